import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { SidxError } from '../../src/errors.ts';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomVectors, row } from './fixtures/data.ts';

const DIM = 12;

function isVectorError(err: unknown): boolean {
  assert.ok(err instanceof SidxError, `expected a SidxError, got ${String(err)}`);
  assert.equal(err.code, 'SIDX_ERR_VECTOR');
  return true;
}

/** A valid FAISS file holding an empty IndexFlatIP with no IDMap2 wrapper ("IxFI" layout of FAISS 1.7). */
function plainFlatIndexFile(dim: number): Buffer {
  const header = Buffer.alloc(4 + 4 + 8 + 8 + 8 + 1 + 4 + 8);
  let at = header.write('IxFI', 0, 'latin1');
  at = header.writeInt32LE(dim, at);
  at = header.writeBigInt64LE(0n, at); // ntotal
  at = header.writeBigInt64LE(1n << 20n, at); // unused
  at = header.writeBigInt64LE(1n << 20n, at); // unused
  at = header.writeUInt8(1, at); // is_trained
  at = header.writeInt32LE(0, at); // METRIC_INNER_PRODUCT
  header.writeBigUInt64LE(0n, at); // empty storage
  return header;
}

test('write then read returns the same search results and scores', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const index = VectorIndex.create({ dim: DIM, metric: 'l2' });
  t.after(() => index.close());
  const vectors = randomVectors(200, DIM, 21);
  const ids = BigInt64Array.from({ length: 200 }, (_, i) => (1n << 55n) + BigInt(i) * 3n);
  index.add(vectors, ids);
  index.remove(ids.subarray(0, 2));
  const path = join(dir, 'index.faiss');
  await index.write(path);
  assert.ok(existsSync(path));
  assert.ok(!existsSync(`${path}.tmp`), 'the temporary file is renamed away');

  const copy = await VectorIndex.read(path);
  t.after(() => copy.close());
  assert.equal(copy.dim, DIM);
  assert.equal(copy.metric, 'l2');
  assert.equal(copy.ntotal, 198);
  const queries = randomVectors(5, DIM, 22);
  assert.deepEqual(await copy.search(queries, 7), await index.search(queries, 7));
  const candidates = ids.subarray(0, 20);
  assert.deepEqual(copy.scoreSubset(row(queries, DIM, 0), candidates), index.scoreSubset(row(queries, DIM, 0), candidates));
  // The read index stays writable, with its id map rebuilt.
  copy.add(row(vectors, DIM, 0), ids.subarray(0, 1));
  assert.equal(copy.ntotal, 199);
});

test('write replaces an existing file atomically', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const path = join(dir, 'index.faiss');
  writeFileSync(path, 'old contents');
  const index = VectorIndex.create({ dim: DIM, metric: 'ip' });
  t.after(() => index.close());
  index.add(randomVectors(3, DIM, 23), new BigInt64Array([1n, 2n, 3n]));
  await index.write(path);
  const copy = await VectorIndex.read(path);
  t.after(() => copy.close());
  assert.equal(copy.ntotal, 3);
  await assert.rejects(index.write(join(dir, 'missing-dir', 'index.faiss')), isVectorError);
  assert.ok(!existsSync(join(dir, 'missing-dir')));
});

test('reading a file that is not an index, a truncated index or a missing file rejects with SIDX_ERR_VECTOR', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const garbage = join(dir, 'garbage.faiss');
  writeFileSync(garbage, 'this is not a FAISS index at all');
  await assert.rejects(VectorIndex.read(garbage), isVectorError);
  await assert.rejects(VectorIndex.read(join(dir, 'absent.faiss')), isVectorError);

  const index = VectorIndex.create({ dim: DIM, metric: 'ip' });
  t.after(() => index.close());
  index.add(randomVectors(50, DIM, 24), BigInt64Array.from({ length: 50 }, (_, i) => BigInt(i)));
  const full = join(dir, 'full.faiss');
  await index.write(full);
  const truncated = join(dir, 'truncated.faiss');
  writeFileSync(truncated, readFileSync(full).subarray(0, 200));
  await assert.rejects(VectorIndex.read(truncated), isVectorError);
});

test('reading a FAISS index without the IDMap2 wrapper is refused', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const path = join(dir, 'plain.faiss');
  writeFileSync(path, plainFlatIndexFile(DIM));
  await assert.rejects(VectorIndex.read(path), (err: unknown) => isVectorError(err) && /IDMap2/.test((err as Error).message));
});

test('an IVF index round-trips with its direct map, so scoreSubset still works after read', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const index = VectorIndex.create({ dim: DIM, metric: 'l2', factory: 'IVF4,Flat' });
  t.after(() => index.close());
  const vectors = randomVectors(200, DIM, 25);
  const ids = BigInt64Array.from({ length: 200 }, (_, i) => BigInt(i) * 11n);
  await index.train(vectors);
  index.add(vectors, ids);
  const path = join(dir, 'ivf.faiss');
  await index.write(path);
  const copy = await VectorIndex.read(path);
  t.after(() => copy.close());
  assert.equal(copy.isTrained, true);
  const query = randomVectors(1, DIM, 26);
  assert.deepEqual(copy.scoreSubset(query, ids), index.scoreSubset(query, ids));
  assert.deepEqual(await copy.search(query, 5), await index.search(query, 5));
});
