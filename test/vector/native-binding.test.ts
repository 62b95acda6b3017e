// White-box tests of the raw addon: the C++ side validates on its own and never lets an exception abort.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadFaissBinding } from '../../src/vector/binding.ts';

const binding = loadFaissBinding();

function nativeError(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof Error);
    assert.equal((err as { code?: string }).code, code, err.message);
    return true;
  };
}

test('the addon reports its FAISS version and thread setting', () => {
  assert.equal(binding.faissVersion, '1.7.3');
  assert.ok(binding.getNumThreads() >= 1);
  binding.noop();
});

test('C++ validates lengths and types even without the TS layer', async (t) => {
  const index = new binding.Index(4, 'ip');
  t.after(() => index.close());
  assert.throws(() => index.add(new Float32Array(5), new BigInt64Array(1)), nativeError('SIDX_ERR_DIMENSION'));
  assert.throws(() => index.add(new Float32Array(8), new BigInt64Array(1)), nativeError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => index.add(new Float32Array(4), [1n] as unknown as BigInt64Array), nativeError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => index.scoreSubset(new Float32Array(3), new BigInt64Array(1)), nativeError('SIDX_ERR_DIMENSION'));
  await assert.rejects(index.search(new Float32Array(4), 0), nativeError('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(index.search(new Float32Array(5), 1), nativeError('SIDX_ERR_DIMENSION'));
  await assert.rejects(index.search(new Float32Array(4 * 3), 2 ** 52), nativeError('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(index.addAsync(new Float32Array(8), new BigInt64Array(3)), nativeError('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(index.train(new Float32Array(3)), nativeError('SIDX_ERR_DIMENSION'));
  await assert.rejects(binding.kmeans(new Float32Array(8), 4, 3), nativeError('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(binding.assign(new Float32Array(8), 4, new Float32Array(5), 1), nativeError('SIDX_ERR_DIMENSION'));
  await assert.rejects(binding.readIndex(''), nativeError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => new binding.Index(4, 'cosine' as 'ip'), nativeError('SIDX_ERR_INVALID_INPUT'));
  assert.throws(() => new binding.Index(4, 'ip', 'Garbage'), nativeError('SIDX_ERR_VECTOR'));
  assert.throws(() => binding.setNumThreads(-1), nativeError('SIDX_ERR_INVALID_INPUT'));
});

test('typed-array views honour byteOffset (zero-copy subarrays)', (t) => {
  const index = new binding.Index(2, 'ip');
  t.after(() => index.close());
  const backing = new Float32Array([9, 9, 1, 2, 3, 4]);
  const ids = new BigInt64Array([0n, 7n, 8n]);
  index.add(backing.subarray(2), ids.subarray(1));
  const scores = index.scoreSubset(new Float32Array([1, 1]), ids);
  assert.ok(Number.isNaN(scores[0]));
  assert.deepEqual(Array.from(scores.subarray(1)), [3, 7]);
});

test('the thread setting is applied and restorable', async (t) => {
  const before = binding.getNumThreads();
  t.after(() => binding.setNumThreads(0));
  binding.setNumThreads(1);
  assert.equal(binding.getNumThreads(), 1);
  const index = new binding.Index(4, 'l2');
  t.after(() => index.close());
  index.add(new Float32Array([0, 0, 0, 0, 1, 1, 1, 1]), new BigInt64Array([1n, 2n]));
  const { labels } = await index.search(new Float32Array([1, 1, 1, 0.9]), 1);
  assert.deepEqual(Array.from(labels), [2n]);
  binding.setNumThreads(0);
  assert.equal(binding.getNumThreads(), before);
});
