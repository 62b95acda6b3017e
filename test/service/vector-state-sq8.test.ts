/**
 * VectorState with `vectors.storage` sq8 against the real LMDB catalog: after a crash (no sync since the last one,
 * deletes freeing rows, new items reusing them, re-upserts moving to new rows) the id file and the codes file are
 * loaded and the change log replayed, not rebuilt; every row's codes and vector then match the catalog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Catalog } from '../../src/store/catalog.ts';
import type { Config } from '../../src/config.ts';
import type { VectorState } from '../../src/service/vector-state.ts';
import { storeOpener } from '../../src/vector/sq8-slot-store.ts';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { crashAndReopen } from '../helpers/vector-state-crash.ts';

const DIM = 16;

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
  const storage = storeOpener({ storage: 'sq8', rerankOffThread: true, rescore: 5, trainSize: 250, hugePages: true, layout: 'sid', pqM: 0 } satisfies Config['vectors']);
  try {
    // Values in [-3, 3], rows 0 and 1 at the ends: the ranges trained on the first 250 cover every later vector.
    const vectors = randomMatrix(500, DIM, 7).map((x) => Math.max(-3, Math.min(3, x)));
    vectors.fill(3, 0, DIM);
    vectors.fill(-3, DIM, 2 * DIM);
    const query = randomMatrix(1, DIM, 8);
    await crashAndReopen(tmp.dir, DIM, storage, vectors, (catalog, state) => checkAgainstCatalog(catalog, state, query, 360));
  } finally {
    tmp.cleanup();
  }
});
