/**
 * VectorState with `vectors.storage` pq against the real LMDB catalog: after a crash (no sync since the last one,
 * deletes freeing rows, new items reusing them, re-upserts moving to new rows) the id file and the pq codes file are
 * loaded and the change log replayed, not rebuilt; every key's score then is either exact (the re-scored top) or
 * the asymmetric score of its catalog vector's codes under the stored codebooks (stale codes are not).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Catalog } from '../../src/store/catalog.ts';
import type { Config } from '../../src/config.ts';
import type { VectorState } from '../../src/service/vector-state.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { storeOpener } from '../../src/vector/sq8-slot-store.ts';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { crashAndReopen } from '../helpers/vector-state-crash.ts';

const DIM = 16;
const M = 4;
const RESCORE = 5;

/** The codebooks in the header of `<dir>/vectors.pq` (after magic, dim, m). */
function storedCentroids(dir: string): Float32Array {
  const fd = openSync(join(dir, 'vectors.pq'), 'r');
  try {
    const centroids = new Float32Array(256 * DIM);
    readSync(fd, new Uint8Array(centroids.buffer), 0, centroids.byteLength, 16);
    return centroids;
  } finally {
    closeSync(fd);
  }
}

/**
 * Top RESCORE exact; every other key's score is its catalog vector's code score under the stored codebooks, less
 * one shift common to all of them (the re-scored top stays above the code scores).
 */
function checkAgainstCatalog(dir: string, catalog: Catalog, state: VectorState, query: Float32Array, maxKey: number): void {
  const { PqCodes } = loadFaissBinding();
  const reference = VectorIndex.create({ dim: DIM, metric: 'ip' });
  const codes = new PqCodes(DIM, 'ip', M, storedCentroids(dir));
  try {
    for (const item of catalog.items()) {
      reference.add(item.vector, BigInt64Array.of(item.key));
      codes.put(Int32Array.of(Number(item.key)), codes.encode(item.vector));
    }
    assert.equal(state.store.ntotal, catalog.count);
    const keys = BigInt64Array.from({ length: maxKey + 2 }, (_, i) => BigInt(i));
    const got = state.store.score(query, keys);
    const want = reference.scoreSubset(query, keys);
    const fromCodes = codes.score(query, Int32Array.from(keys, Number));
    let exact = 0;
    const shifts: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      assert.equal(Number.isNaN(got[i]!), Number.isNaN(want[i]!), `key ${i}: present in both or neither`);
      if (Number.isNaN(want[i]!)) continue;
      if (got[i] === want[i]) exact++;
      else shifts.push(fromCodes[i]! - got[i]!);
    }
    assert.ok(exact >= RESCORE, `the re-scored top is exact (${exact} exact scores)`);
    assert.ok(shifts.length > 200, `the others keep code scores (${shifts.length})`);
    const spread = Math.max(...shifts) - Math.min(...shifts);
    assert.ok(Math.min(...shifts) >= -1e-5 && spread < 1e-4, `every other score is its catalog vector's code score (shifts ${Math.min(...shifts)}..${Math.max(...shifts)})`);
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
