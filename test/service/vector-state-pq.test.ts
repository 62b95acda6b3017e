/**
 * VectorState with `vectors.storage` pq against the real LMDB catalog: after a crash (no sync since the last one,
 * deletes freeing rows, new items reusing them, re-upserts moving to new rows) the id file and the pq codes file are
 * loaded and the change log replayed, not rebuilt; every key's score then is either exact (the re-scored top) or
 * the asymmetric score of its catalog vector's codes under the stored codebooks (stale codes are not).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Catalog } from '../../src/store/catalog.ts';
import type { Config } from '../../src/config.ts';
import { VectorState } from '../../src/service/vector-state.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { storeOpener } from '../../src/vector/sq8-slot-store.ts';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { crashAndReopen, log, upsert } from '../helpers/vector-state-crash.ts';
import { checkCodeScores, storedPq } from '../helpers/code-stores.ts';

const DIM = 16;
const M = 4;
const RESCORE = 5;

/**
 * Top RESCORE exact; every other key's score is its catalog vector's code score under the stored codebooks, less
 * one shift common to all of them (the re-scored top stays above the code scores).
 */
function checkAgainstCatalog(dir: string, catalog: Catalog, state: VectorState, query: Float32Array, maxKey: number): void {
  const reference = VectorIndex.create({ dim: DIM, metric: 'ip' });
  const codes = storedPq(join(dir, 'vectors.pq'), DIM, 'ip', M);
  try {
    for (const item of catalog.items()) {
      reference.add(item.vector, BigInt64Array.of(item.key));
      codes.put(Int32Array.of(Number(item.key)), codes.encode(item.vector));
    }
    assert.equal(state.store.ntotal, catalog.count);
    const keys = BigInt64Array.from({ length: maxKey + 2 }, (_, i) => BigInt(i));
    checkCodeScores(state.store.score(query, keys), reference.scoreSubset(query, keys), codes.score(query, Int32Array.from(keys, Number)), RESCORE);
  } finally {
    codes.close();
    reference.close();
  }
}

test('pq: after a crash the codes file is loaded and the changes after the last sync replayed, not rebuilt', async () => {
  const tmp = tempDir();
  const storage = storeOpener({ storage: 'pq', rerankOffThread: true, rescore: RESCORE, trainSize: 256, hugePages: true, layout: 'sid', pqM: M } satisfies Config['vectors']);
  try {
    const vectors = randomMatrix(500, DIM, 7);
    const query = randomMatrix(1, DIM, 8);
    await crashAndReopen(tmp.dir, DIM, storage, vectors, (catalog, state) => checkAgainstCatalog(tmp.dir, catalog, state, query, 360));
  } finally {
    tmp.cleanup();
  }
});

test('pq: writes go on while the codes train in the background (deletes, freed rows reused, re-upserts to new rows); sync waits for them', async () => {
  const tmp = tempDir();
  const storage = storeOpener({ storage: 'pq', rerankOffThread: true, rescore: RESCORE, trainSize: 256, hugePages: true, layout: 'sid', pqM: M } satisfies Config['vectors']);
  const catalog = Catalog.open(join(tmp.dir, 'catalog'));
  const lines: string[] = [];
  const state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', log(lines), storage);
  try {
    const vectors = randomMatrix(4000, DIM, 9);
    upsert(catalog, state, DIM, Array.from({ length: 2000 }, (_, i) => i), vectors); // 2,000 held: their codes take two turns
    assert.ok(state.store.training?.(), 'the batch that completed the sample started a background training');
    let turns = 0;
    let next = 2000;
    while (state.store.training?.()) {
      const del = catalog.deleteBatch([`it${7 * turns}`, `it${7 * turns + 3}`]);
      state.applyDelete(del.removed, del.seq);
      upsert(catalog, state, DIM, Array.from({ length: 20 }, (_, i) => next + i), vectors); // into the freed rows first
      next += 20;
      upsert(catalog, state, DIM, [7 * turns + 1], vectors, (id) => id + 2000); // a new vector, a new row
      turns++;
      await nextTurn();
    }
    assert.ok(turns >= 3, `writes came in ${turns} turns while it trained and wrote the codes`);
    await state.sync();
    assert.match(lines.join('\n'), /training the codes in the background on 2000 vectors[\s\S]*codes trained and written in \d+ ms/);
    checkAgainstCatalog(tmp.dir, catalog, state, randomMatrix(1, DIM, 10), next + 10);
  } finally {
    await state.close();
    await catalog.close();
    tmp.cleanup();
  }
});
