import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SidxError } from '../../src/errors.ts';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { assertClose, randomVectors, row, score } from './fixtures/data.ts';

const DIM = 8;

function hasCode(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof SidxError, `expected a SidxError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

test('IVF4,Flat: untrained until trained, then search and scoreSubset work', async (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'l2', factory: 'IVF4,Flat' });
  t.after(() => index.close());
  const vectors = randomVectors(400, DIM, 31);
  const ids = BigInt64Array.from({ length: 400 }, (_, i) => BigInt(i) + 10_000n);
  assert.equal(index.isTrained, false);
  assert.throws(() => index.add(vectors, ids), hasCode('SIDX_ERR_VECTOR'));
  assert.equal(index.ntotal, 0);
  await index.train(vectors);
  assert.equal(index.isTrained, true);
  index.add(vectors, ids);
  assert.equal(index.ntotal, 400);

  // Each stored vector finds itself: its own list is the one probed.
  const { labels: self } = await index.search(vectors.subarray(0, 3 * DIM), 1);
  assert.deepEqual(Array.from(self), [ids[0], ids[1], ids[2]]);

  // scoreSubset goes through the IVF direct map and stays exact for IVF,Flat.
  const query = randomVectors(1, DIM, 32);
  const scores = index.scoreSubset(query, new BigInt64Array([ids[3], ids[399], 5n]));
  assertClose(scores[0], score('l2', query, row(vectors, DIM, 3)));
  assertClose(scores[1], score('l2', query, row(vectors, DIM, 399)));
  assert.ok(Number.isNaN(scores[2]));

  // The approximate search (one list probed) reports exact distances for what it returns.
  const { distances, labels } = await index.search(query, 10);
  const found = labels.filter((label) => label !== -1n);
  assert.ok(found.length > 0);
  const exact = index.scoreSubset(query, found);
  found.forEach((_, i) => assertClose(distances[i], exact[i]));

  // IndexIDMap::remove_ids corrupts ids on IVF storage in FAISS 1.7.3, so removal is refused.
  assert.throws(() => index.remove(ids.subarray(0, 1)), hasCode('SIDX_ERR_VECTOR'));
  assert.equal(index.ntotal, 400);
});

test('SQ8 storage: scoreSubset reconstructs approximately', async (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'l2', factory: 'SQ8' });
  t.after(() => index.close());
  const vectors = randomVectors(300, DIM, 33);
  const ids = BigInt64Array.from({ length: 300 }, (_, i) => BigInt(i));
  await index.train(vectors);
  index.add(vectors, ids);
  const query = row(vectors, DIM, 17);
  const scores = index.scoreSubset(query, new BigInt64Array([17n, 18n]));
  assert.ok(scores[0] < 0.05, `self distance ${scores[0]}`);
  assertClose(scores[1], score('l2', query, row(vectors, DIM, 18)), 0.05);
  assert.equal(index.remove(new BigInt64Array([17n])), 1);
  assert.ok(Number.isNaN(index.scoreSubset(query, new BigInt64Array([17n]))[0]));
});

test('a bad factory string is a SIDX_ERR_VECTOR error, not an abort', () => {
  assert.throws(() => VectorIndex.create({ dim: DIM, metric: 'ip', factory: 'NotAnIndex,42' }), hasCode('SIDX_ERR_VECTOR'));
  assert.throws(() => VectorIndex.create({ dim: DIM, metric: 'ip', factory: 'IVF,Flat' }), hasCode('SIDX_ERR_VECTOR'));
  assert.throws(() => VectorIndex.create({ dim: DIM, metric: 'ip', factory: 'IDMap2,Flat' }), hasCode('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => VectorIndex.create({ dim: DIM, metric: 'ip', factory: '' }), hasCode('SIDX_ERR_INVALID_INPUT'));
});

test('training with too few points for the IVF lists rejects with a FAISS message', async (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'l2', factory: 'IVF64,Flat' });
  t.after(() => index.close());
  await assert.rejects(index.train(randomVectors(10, DIM, 34)), (err: unknown) => {
    hasCode('SIDX_ERR_VECTOR')(err);
    assert.match((err as Error).message, /training points|clusters/);
    return true;
  });
});
