import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SidxError } from '../../src/errors.ts';
import { VectorIndex, type Metric } from '../../src/vector/vector-index.ts';
import { assertClose, bruteForceTopK, randomVectors, row, score } from './fixtures/data.ts';

const DIM = 16;

function filledIndex(metric: Metric, n = 300, seed = 1): { index: VectorIndex; vectors: Float32Array; ids: BigInt64Array } {
  const index = VectorIndex.create({ dim: DIM, metric });
  const vectors = randomVectors(n, DIM, seed);
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 7919n + (1n << 60n));
  index.add(vectors, ids);
  return { index, vectors, ids };
}

function assertSidxError(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof SidxError, `expected a SidxError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

test('add grows ntotal and keeps dim and metric', (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'ip' });
  t.after(() => index.close());
  assert.equal(index.dim, DIM);
  assert.equal(index.metric, 'ip');
  assert.equal(index.isTrained, true);
  assert.equal(index.ntotal, 0);
  index.add(randomVectors(10, DIM, 2), BigInt64Array.from({ length: 10 }, (_, i) => BigInt(i)));
  assert.equal(index.ntotal, 10);
  index.add(new Float32Array(0), new BigInt64Array(0));
  assert.equal(index.ntotal, 10);
});

test('addAsync adds off the event loop', async (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'l2' });
  t.after(() => index.close());
  const vectors = randomVectors(1000, DIM, 3);
  await index.addAsync(vectors, BigInt64Array.from({ length: 1000 }, (_, i) => BigInt(i) + 5n));
  assert.equal(index.ntotal, 1000);
  const scores = index.scoreSubset(row(vectors, DIM, 7), new BigInt64Array([12n]));
  assert.equal(scores[0], 0);
});

test('64-bit ids above 2^53 survive add, scoreSubset and search exactly', async (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'ip' });
  t.after(() => index.close());
  const vectors = randomVectors(3, DIM, 4);
  const ids = new BigInt64Array([(1n << 53n) + 1n, 9223372036854775807n, -9223372036854775807n]);
  index.add(vectors, ids);
  for (let i = 0; i < 3; i++) {
    const { labels } = await index.search(row(vectors, DIM, i), 3);
    assert.ok(labels.includes(ids[i]));
    assertClose(index.scoreSubset(row(vectors, DIM, i), ids.subarray(i, i + 1))[0], score('ip', row(vectors, DIM, i), row(vectors, DIM, i)));
  }
});

for (const metric of ['ip', 'l2'] as const) {
  test(`scoreSubset equals brute force (${metric}) and is NaN for unknown ids`, (t) => {
    const { index, vectors, ids } = filledIndex(metric);
    t.after(() => index.close());
    const query = randomVectors(1, DIM, 99);
    const picked = [5, 0, 299, 123, 5];
    const candidates = new BigInt64Array([...picked.map((i) => ids[i]), 42n, -1n]);
    const scores = index.scoreSubset(query, candidates);
    assert.equal(scores.length, candidates.length);
    picked.forEach((i, j) => assertClose(scores[j], score(metric, query, row(vectors, DIM, i))));
    assert.ok(Number.isNaN(scores[5]) && Number.isNaN(scores[6]));
    assert.equal(index.scoreSubset(query, new BigInt64Array(0)).length, 0);
  });

  test(`search top-k equals brute force (${metric})`, async (t) => {
    const { index, vectors, ids } = filledIndex(metric);
    t.after(() => index.close());
    const queries = randomVectors(4, DIM, 77);
    const k = 10;
    const { distances, labels } = await index.search(queries, k);
    assert.equal(distances.length, 4 * k);
    assert.equal(labels.length, 4 * k);
    for (let q = 0; q < 4; q++) {
      const expected = bruteForceTopK(metric, vectors, ids, DIM, row(queries, DIM, q), k);
      assert.deepEqual(Array.from(labels.subarray(q * k, (q + 1) * k)), expected.ids);
      expected.scores.forEach((s, j) => assertClose(distances[q * k + j], s));
    }
  });
}

test('search pads with label -1 and NaN distance when k exceeds ntotal', async (t) => {
  const { index } = filledIndex('ip', 3);
  t.after(() => index.close());
  const { distances, labels } = await index.search(randomVectors(2, DIM, 5), 5);
  for (let q = 0; q < 2; q++) {
    assert.deepEqual(Array.from(labels.subarray(q * 5 + 3, q * 5 + 5)), [-1n, -1n]);
    assert.ok(Number.isNaN(distances[q * 5 + 3]) && Number.isNaN(distances[q * 5 + 4]));
  }
  const empty = VectorIndex.create({ dim: DIM, metric: 'l2' });
  t.after(() => empty.close());
  assert.deepEqual(Array.from((await empty.search(randomVectors(1, DIM, 6), 2)).labels), [-1n, -1n]);
});

test('removed ids disappear from scoreSubset and search', async (t) => {
  const { index, vectors, ids } = filledIndex('ip');
  t.after(() => index.close());
  const gone = new BigInt64Array([ids[10], ids[20], 123456789n]);
  assert.equal(index.remove(gone), 2);
  assert.equal(index.ntotal, 298);
  const scores = index.scoreSubset(row(vectors, DIM, 10), new BigInt64Array([ids[10], ids[20], ids[30]]));
  assert.ok(Number.isNaN(scores[0]) && Number.isNaN(scores[1]));
  assertClose(scores[2], score('ip', row(vectors, DIM, 10), row(vectors, DIM, 30)));
  const { labels } = await index.search(row(vectors, DIM, 20), 298);
  assert.ok(!labels.includes(ids[10]) && !labels.includes(ids[20]));
  assert.ok(labels.includes(ids[299]));
  // Survivors keep their vectors after the storage is compacted.
  assertClose(index.scoreSubset(row(vectors, DIM, 299), ids.subarray(299))[0], score('ip', row(vectors, DIM, 299), row(vectors, DIM, 299)));
  // A removed id can be added again.
  index.add(row(vectors, DIM, 10), ids.subarray(10, 11));
  assert.equal(index.ntotal, 299);
});

test('duplicate ids are rejected without changing the index', (t) => {
  const { index, vectors, ids } = filledIndex('ip', 5);
  t.after(() => index.close());
  assert.throws(() => index.add(row(vectors, DIM, 0), ids.subarray(0, 1)), assertSidxError('SIDX_ERR_DUPLICATE_ID'));
  assert.throws(() => index.add(randomVectors(2, DIM, 8), new BigInt64Array([50n, 50n])), assertSidxError('SIDX_ERR_DUPLICATE_ID'));
  assert.equal(index.ntotal, 5);
});

test('shape errors are SidxErrors raised before the native call', async (t) => {
  const { index } = filledIndex('l2', 5);
  t.after(() => index.close());
  assert.throws(() => index.add(new Float32Array(DIM + 1), new BigInt64Array(1)), assertSidxError('SIDX_ERR_DIMENSION'));
  assert.throws(() => index.add(new Float32Array(DIM * 2), new BigInt64Array(1)), assertSidxError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => index.scoreSubset(new Float32Array(DIM - 1), new BigInt64Array(1)), assertSidxError('SIDX_ERR_DIMENSION'));
  assert.throws(() => index.add(new Float64Array(DIM) as unknown as Float32Array, new BigInt64Array(1)), assertSidxError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => index.remove([1n] as unknown as BigInt64Array), assertSidxError('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(index.search(new Float32Array(3), 1), assertSidxError('SIDX_ERR_DIMENSION'));
  await assert.rejects(index.search(new Float32Array(DIM), 0), assertSidxError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => VectorIndex.create({ dim: 0, metric: 'ip' }), assertSidxError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => VectorIndex.create({ dim: 4, metric: 'cosine' as Metric }), assertSidxError('SIDX_ERR_INVALID_INPUT'));
});

test('use after close throws a coded error; close is idempotent and safe with a pending search', async () => {
  const { index } = filledIndex('ip', 50);
  const pending = index.search(randomVectors(8, DIM, 9), 5);
  index.close();
  index.close();
  const { labels } = await pending;
  assert.equal(labels.length, 40);
  assert.throws(() => index.ntotal, assertSidxError('SIDX_ERR_VECTOR'));
  assert.throws(() => index.add(new Float32Array(DIM), new BigInt64Array(1)), assertSidxError('SIDX_ERR_VECTOR'));
  assert.throws(() => index.scoreSubset(new Float32Array(DIM), new BigInt64Array(1)), assertSidxError('SIDX_ERR_VECTOR'));
  await assert.rejects(index.search(new Float32Array(DIM), 1), assertSidxError('SIDX_ERR_VECTOR'));
});

test('scoreSubset waits for an in-flight addAsync instead of racing it', async (t) => {
  const index = VectorIndex.create({ dim: DIM, metric: 'ip' });
  t.after(() => index.close());
  const vectors = randomVectors(20000, DIM, 10);
  const ids = BigInt64Array.from({ length: 20000 }, (_, i) => BigInt(i));
  const adding = index.addAsync(vectors, ids);
  const scores = index.scoreSubset(row(vectors, DIM, 19999), new BigInt64Array([19999n]));
  await adding;
  // Either the add finished first (a score) or the read ran first (NaN); never a torn read or a crash.
  assert.ok(Number.isNaN(scores[0]) || Math.abs(scores[0] - score('ip', row(vectors, DIM, 19999), row(vectors, DIM, 19999))) < 1e-3);
  assert.equal(index.ntotal, 20000);
});

test('scoreSubset is exact across dims that hit the SIMD blocks and the scalar tail', (t) => {
  for (const dim of [1, 31, 32, 33, 100, 512]) {
    for (const metric of ['ip', 'l2'] as const) {
      const index = VectorIndex.create({ dim, metric });
      t.after(() => index.close());
      const vectors = randomVectors(20, dim, dim);
      const ids = BigInt64Array.from({ length: 20 }, (_, i) => BigInt(i));
      index.add(vectors, ids);
      const query = randomVectors(1, dim, dim + 1);
      const reversed = ids.slice().reverse();
      const scores = index.scoreSubset(query, reversed);
      reversed.forEach((id, j) => assertClose(scores[j], score(metric, query, row(vectors, dim, Number(id))), 1e-4));
    }
  }
});
