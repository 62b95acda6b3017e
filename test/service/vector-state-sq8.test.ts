/**
 * VectorState with `vectors.storage` sq8 against the real LMDB catalog: after a crash (no sync since the last one,
 * deletes freeing rows, new items reusing them, re-upserts moving to new rows) the id file and the codes file are
 * loaded and the change log replayed, not rebuilt; every row's codes and vector then match the catalog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Catalog } from '../../src/store/catalog.ts';
import type { Config } from '../../src/config.ts';
import { VectorState } from '../../src/service/vector-state.ts';
import { storeOpener } from '../../src/vector/sq8-slot-store.ts';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const DIM = 16;
const log = (lines: string[]) => ({ info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) });

function upsert(catalog: Catalog, state: VectorState, ids: number[], vectors: Float32Array, rowOf = (id: number) => id): void {
  const flat = new Float32Array(ids.length * DIM);
  ids.forEach((id, i) => flat.set(vectors.subarray(rowOf(id) * DIM, (rowOf(id) + 1) * DIM), i * DIM));
  const res = catalog.upsertBatch(1, ids.map((id, i) => ({ id: `it${id}`, vector: flat.subarray(i * DIM, (i + 1) * DIM), codes: Int32Array.of(id % 7, id % 5) })));
  state.applyUpsert(res.keys, res.slots, flat);
}

/** Top 5 exact, every other score within half a step per dimension of the catalog's vector (stale codes are not). */
function checkAgainstCatalog(catalog: Catalog, state: VectorState, query: Float32Array, maxKey: number): void {
  const reference = VectorIndex.create({ dim: DIM, metric: 'ip' });
  try {
    for (const item of catalog.items()) reference.add(item.vector, BigInt64Array.of(item.key));
    assert.equal(state.store.ntotal, catalog.count);
    const keys = BigInt64Array.from({ length: maxKey + 2 }, (_, i) => BigInt(i));
    const got = state.store.score(query, keys);
    const want = reference.scoreSubset(query, keys);
    // Half a step (6 / 255) per dimension, weighted by the query.
    const bound = query.reduce((sum, x) => sum + Math.abs(x), 0) * (3 / 255) + 1e-4;
    let exact = 0;
    for (let i = 0; i < keys.length; i++) {
      assert.equal(Number.isNaN(got[i]!), Number.isNaN(want[i]!), `key ${i}: present in both or neither`);
      if (Number.isNaN(want[i]!)) continue;
      if (got[i] === want[i]) exact++;
      assert.ok(Math.abs(got[i]! - want[i]!) <= bound, `key ${i}: ${got[i]} vs ${want[i]} (stale codes?)`);
    }
    assert.ok(exact >= 5, `the re-scored top is exact (${exact} exact scores)`);
  } finally {
    reference.close();
  }
}

test('sq8: after a crash the codes file is loaded and the changes after the last sync replayed, not rebuilt', async () => {
  const tmp = tempDir();
  const storage = storeOpener({ storage: 'sq8', rescore: 5, trainSize: 250 } satisfies Config['vectors']);
  try {
    // Values in [-3, 3], rows 0 and 1 at the ends: the ranges trained on the first 250 cover every later vector.
    const vectors = randomMatrix(500, DIM, 7).map((x) => Math.max(-3, Math.min(3, x)));
    vectors.fill(3, 0, DIM);
    vectors.fill(-3, DIM, 2 * DIM);
    const query = randomMatrix(1, DIM, 8);
    let catalog = Catalog.open(join(tmp.dir, 'catalog'));
    let state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', log([]), storage);
    for (let b = 0; b < 3; b++) upsert(catalog, state, Array.from({ length: 100 }, (_, i) => b * 100 + i), vectors);
    await state.sync();
    const remove = Array.from({ length: 20 }, (_, i) => `it${3 * i}`);
    state.applyDelete(catalog.deleteBatch(remove).removed);
    upsert(catalog, state, Array.from({ length: 30 }, (_, i) => 100 + i), vectors, (id) => id + 300);
    upsert(catalog, state, Array.from({ length: 50 }, (_, i) => 300 + i), vectors);
    checkAgainstCatalog(catalog, state, query, 360);
    await state.close(); // no sync: what a kill -9 leaves (page-cache writes survive it)
    await catalog.close();

    catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const lines: string[] = [];
    state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', log(lines), storage);
    assert.match(lines.join('\n'), /330 vectors opened from vectors.ids .* 100 changes replayed/);
    assert.doesNotMatch(lines.join('\n'), /rebuil/);
    checkAgainstCatalog(catalog, state, query, 360);
    await state.close();
    await catalog.close();
  } finally {
    tmp.cleanup();
  }
});
