import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isSidxError, type ErrorCode } from '../../src/errors.ts';
import { Catalog, type UpsertInput } from '../../src/store/catalog.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { readU64BE } from '../../src/store/keys.ts';
import { open } from 'lmdb';
import { tempDir } from '../helpers/paths.ts';

const D = 8;

function vec(seed: number, dim = D): Float32Array {
  const v = new Float32Array(dim);
  for (let j = 0; j < dim; j++) v[j] = Math.sin(seed * 7.3 + j) * 1e3 + 1 / (j + 1 + seed);
  return v;
}

function item(id: string, codes: number[], seed = 1, dim = D): UpsertInput {
  return { id, codes: Int32Array.from(codes), vector: vec(seed, dim) };
}

function code(c: ErrorCode): (e: unknown) => boolean {
  return (e) => isSidxError(e) && e.code === c;
}

function bitsOf(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

describe('Catalog', () => {
  let dir: string;
  let cleanup: () => void;
  let cat: Catalog;

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('sidx-catalog-'));
    cat = Catalog.open(dir);
  });
  afterEach(async () => {
    await cat.close();
    cleanup();
  });

  test('round trips typed arrays bit-exactly', () => {
    const special = Float32Array.of(0, -0, 1e-45, -3.4028234663852886e38, 1.1754943508222875e-38, Math.PI, -1, 65504.5);
    const res = cat.upsertBatch(1, [
      { id: 'a', codes: Int32Array.of(12, 7, 300), vector: special },
      { id: 'ß-ünïcødé-🙂', codes: Int32Array.of(0, 65535, 1), vector: vec(2) },
    ]);
    assert.deepEqual(res.keys, BigInt64Array.of(1n, 2n));
    assert.deepEqual(res.replaced, [false, false]);
    assert.equal(res.seq, 2n);
    const a = cat.get('a')!;
    assert.equal(a.id, 'a');
    assert.equal(a.key, 1n);
    assert.equal(a.model, 1);
    assert.deepEqual(a.codes, Int32Array.of(12, 7, 300));
    assert.ok(a.vector instanceof Float32Array);
    assert.deepEqual(bitsOf(a.vector), bitsOf(special));
    assert.ok(Object.is(a.vector[1], -0));
    const u = cat.getByKey(2n)!;
    assert.equal(u.id, 'ß-ünïcødé-🙂');
    assert.deepEqual(u.codes, Int32Array.of(0, 65535, 1));
    assert.deepEqual(bitsOf(u.vector), bitsOf(vec(2)));
    assert.equal(cat.get('missing'), undefined);
    assert.equal(cat.getByKey(99n), undefined);
    assert.equal(cat.count, 2);
    assert.equal(cat.dim, D);
  });

  test('records own their arrays (no aliasing of lmdb buffers between reads)', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3], 1), item('b', [4, 5, 6], 2)]);
    const a = cat.get('a')!;
    const b = cat.get('b')!;
    assert.deepEqual(bitsOf(a.vector), bitsOf(vec(1)));
    assert.deepEqual(a.codes, Int32Array.of(1, 2, 3));
    a.vector[0] = 42;
    assert.deepEqual(bitsOf(cat.get('a')!.vector), bitsOf(vec(1)));
    assert.deepEqual(bitsOf(b.vector), bitsOf(vec(2)));
  });

  test('internal keys above 2^32 and 2^53 round trip', async () => {
    await cat.close();
    cleanup();
    ({ dir, cleanup } = tempDir('sidx-catalog-'));
    const first = (1n << 53n) + 1n;
    cat = Catalog.open(dir, { firstKey: first });
    const res = cat.upsertBatch(1, [item('x', [1, 2, 3]), item('y', [1, 2, 3])]);
    assert.deepEqual(res.keys, BigInt64Array.of(first, first + 1n));
    assert.equal(cat.get('y')!.key, first + 1n);
    assert.equal(cat.getByKey(first + 1n)!.id, 'y');
    assert.deepEqual(cat.exact(1, Int32Array.of(1, 2, 3), 10), BigInt64Array.of(first, first + 1n));
    assert.deepEqual([...cat.changesSince(0n)].map((c) => c.key), [first, first + 1n]);
    assert.ok(first > 2n ** 32n);
    // recordOf writes its key into one reused buffer: records read one after the other keep their own fields.
    const [x, y] = [cat.recordOf(first)!, cat.recordOf(first + 1n)!];
    assert.deepEqual([x.id, x.key, y.id, y.key], ['x', first, 'y', first + 1n]);
    assert.deepEqual(x.codes, Int32Array.of(1, 2, 3));
    assert.equal(cat.recordOf(first + 2n), undefined);
  });

  test('re-upsert keeps the internal key and moves postings to the new SID', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3]), item('b', [1, 2, 3])]);
    const res = cat.upsertBatch(1, [item('a', [1, 9, 3], 5), item('c', [1, 9, 3])]);
    assert.deepEqual(res.keys, BigInt64Array.of(1n, 3n));
    assert.deepEqual(res.replaced, [true, false]);
    assert.deepEqual(cat.exact(1, Int32Array.of(1, 2, 3), 10), BigInt64Array.of(2n));
    assert.deepEqual(cat.exact(1, Int32Array.of(1, 9, 3), 10), BigInt64Array.of(1n, 3n));
    assert.deepEqual(cat.prefix(1, Int32Array.of(1, 2), 10), BigInt64Array.of(2n));
    // a's old Hamming postings are gone too: from (1,2,3) the only neighbours are at (1,9,3).
    const n = cat.hamming1(1, Int32Array.of(1, 2, 3), 10);
    assert.deepEqual(n.map((x) => [x.key, x.position, [...x.codes]]), [[1n, 1, [1, 9, 3]], [3n, 1, [1, 9, 3]]]);
    assert.deepEqual(bitsOf(cat.get('a')!.vector), bitsOf(vec(5)));
    assert.equal(cat.count, 3);
  });

  test('re-upsert under another model version moves postings across models', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3])]);
    cat.upsertBatch(2, [item('a', [4, 5])]);
    assert.deepEqual(cat.exact(1, Int32Array.of(1, 2, 3), 10), new BigInt64Array(0));
    assert.deepEqual(cat.exact(2, Int32Array.of(4, 5), 10), BigInt64Array.of(1n));
    assert.equal(cat.get('a')!.model, 2);
    assert.deepEqual(cat.hamming1(1, Int32Array.of(1, 2, 4), 10), []);
  });

  test('delete removes the item, its id mapping and every posting', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3]), item('b', [1, 2, 4]), item('c', [7, 2, 3])]);
    const res = cat.deleteBatch(['a', 'nope']);
    assert.deepEqual(res.removed, BigInt64Array.of(1n));
    assert.deepEqual(res.missing, ['nope']);
    assert.equal(res.seq, 4n);
    assert.equal(cat.get('a'), undefined);
    assert.equal(cat.getByKey(1n), undefined);
    assert.equal(cat.count, 2);
    assert.deepEqual(cat.exact(1, Int32Array.of(1, 2, 3), 10), new BigInt64Array(0));
    assert.deepEqual(cat.prefix(1, Int32Array.of(1), 10), BigInt64Array.of(2n));
    // Every rotation: from (1,2,3) the neighbours b (pos 2) and c (pos 0) remain, a is in none.
    assert.deepEqual(cat.hamming1(1, Int32Array.of(1, 2, 3), 10).map((n) => [n.key, n.position]), [[2n, 2], [3n, 0]]);
    assert.deepEqual(cat.hamming1(1, Int32Array.of(1, 2, 5), 10).map((n) => n.key), [2n]);
    assert.deepEqual(cat.hamming1(1, Int32Array.of(9, 2, 3), 10).map((n) => n.key), [3n]);
    // Re-adding gets a fresh key (keys are never reused).
    assert.deepEqual(cat.upsertBatch(1, [item('a', [1, 2, 3])]).keys, BigInt64Array.of(4n));
    // A delete of only unknown ids writes nothing.
    const before = cat.lastSeq;
    assert.deepEqual(cat.deleteBatch(['zz']), { seq: before, removed: new BigInt64Array(0), missing: ['zz'] });
  });

  test('a rejected batch writes nothing', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3])]);
    const snapshot = () => ({ count: cat.count, seq: cat.lastSeq, changes: [...cat.changesSince(0n)], a: cat.get('a') });
    const before = snapshot();
    // The bad item comes last, after valid new and replacing items.
    assert.throws(() => cat.upsertBatch(1, [item('b', [1, 2, 3]), item('a', [5, 5, 5]), item('c', [1, 2, 3], 1, D + 1)]), code('SIDX_ERR_DIMENSION'));
    // Whole batch with a dimension different from the stored one (checked inside the transaction).
    assert.throws(() => cat.upsertBatch(1, [item('b', [1, 2, 3], 1, D + 1), item('c', [1, 2, 3], 1, D + 1)]), (e: unknown) =>
      code('SIDX_ERR_DIMENSION')(e) && /holds 8-dimensional/.test((e as Error).message));
    assert.throws(() => cat.upsertBatch(1, [item('b', [1, 2, 3]), item('c', [1, 2])]), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.upsertBatch(1, [item('b', [1, 2])]), (e: unknown) => code('SIDX_ERR_INVALID_INPUT')(e) && /3-level/.test((e as Error).message));
    assert.throws(() => cat.upsertBatch(1, [item('b', [1, 2, 3]), item('b', [1, 2, 3])]), code('SIDX_ERR_DUPLICATE_ID'));
    assert.throws(() => cat.upsertBatch(1, []), code('SIDX_ERR_BATCH_EMPTY'));
    assert.throws(() => cat.upsertBatch(1, [{ id: 'b', codes: Int32Array.of(1, 2, 3), vector: Float32Array.of(1, 2, 3, 4, 5, 6, 7, NaN) }]), code('SIDX_ERR_NOT_FINITE'));
    assert.throws(() => cat.upsertBatch(1, [item('b', [1, 2, 65536])]), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.upsertBatch(1, [item('', [1, 2, 3])]), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.upsertBatch(1, [item('x'.repeat(600), [1, 2, 3])]), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.upsertBatch(1, [item('\ud800', [1, 2, 3])]), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.upsertBatch(70000, [item('b', [1, 2, 3])]), code('SIDX_ERR_INVALID_INPUT'));
    assert.deepEqual(snapshot(), before);
    assert.deepEqual(cat.exact(1, Int32Array.of(5, 5, 5), 10), new BigInt64Array(0));
    // The next accepted batch continues the counters where they were (row 1: the refused batches committed none).
    assert.deepEqual(cat.upsertBatch(1, [item('b', [1, 2, 3])]), { seq: 2n, keys: BigInt64Array.of(2n), replaced: [false], slots: Uint32Array.of(1) });
  });

  test('change log: changes in order, changesSince, truncate', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3]), item('b', [1, 2, 3])]);
    cat.upsertBatch(1, [item('a', [3, 2, 1])]);
    cat.deleteBatch(['b']);
    assert.equal(cat.lastSeq, 4n);
    const all = [...cat.changesSince(0n)];
    assert.deepEqual(all, [
      { seq: 1n, op: 'upsert', key: 1n },
      { seq: 2n, op: 'upsert', key: 2n },
      { seq: 3n, op: 'upsert', key: 1n },
      { seq: 4n, op: 'delete', key: 2n },
    ]);
    assert.deepEqual([...cat.changesSince(2n)].map((c) => c.seq), [3n, 4n]);
    assert.deepEqual([...cat.changesSince(4n)], []);
    cat.truncateChanges(2n);
    assert.deepEqual([...cat.changesSince(2n)].map((c) => c.seq), [3n, 4n]);
    assert.throws(() => cat.changesSince(1n), (e: unknown) => code('SIDX_ERR_STORE')(e) && /truncated up to seq 2/.test((e as Error).message));
    cat.truncateChanges(1n); // no-op, never moves back
    cat.truncateChanges(100n); // clamped to lastSeq
    assert.deepEqual([...cat.changesSince(4n)], []);
    assert.throws(() => cat.changesSince(3n), code('SIDX_ERR_STORE'));
    cat.upsertBatch(1, [item('c', [1, 1, 1])]);
    assert.deepEqual([...cat.changesSince(4n)], [{ seq: 5n, op: 'upsert', key: 3n }]);
    assert.equal(cat.lastSeq, 5n);
  });

  test('change log: one entry per transaction; reads and truncation inside an entry', async () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3]), item('b', [1, 2, 3]), item('c', [1, 2, 4])]); // seqs 1-3
    cat.deleteBatch(['a', 'x', 'b']); // seqs 4-5 ('x' is missing: no seq)
    cat.upsertBatch(1, [item('d', [2, 2, 2])]); // seq 6
    assert.deepEqual([...cat.changesSince(1n)].map((c) => [c.seq, c.op, c.key]), [[2n, 'upsert', 2n], [3n, 'upsert', 3n], [4n, 'delete', 1n], [5n, 'delete', 2n], [6n, 'upsert', 4n]]);
    assert.deepEqual([...cat.changesSince(4n)].map((c) => c.seq), [5n, 6n]);
    cat.truncateChanges(4n); // removes the first transaction's entry, keeps the delete's (seq 5 is past the cut)
    assert.deepEqual([...cat.changesSince(4n)].map((c) => c.seq), [5n, 6n]);
    assert.throws(() => cat.changesSince(3n), code('SIDX_ERR_STORE'));
    await cat.close();
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
    assert.equal(report.changes, 2);
    const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary' });
    const entries = Array.from(env.openDB<Buffer, Buffer>({ name: 'changes', encoding: 'binary', keyEncoding: 'binary' }).getRange({}), ({ key, value }) => [readU64BE(key, 0), value.length]);
    await env.close();
    assert.deepEqual(entries, [[4n, 18], [6n, 9]]);
    cat = Catalog.open(dir);
  });

  test('truncate inside one 5,000-change transaction', () => {
    const batch = Array.from({ length: 5000 }, (_, i) => item(`i${i}`, [i % 7, i % 11, i % 13], i));
    cat.upsertBatch(1, batch);
    cat.truncateChanges(4500n);
    const rest = [...cat.changesSince(4500n)];
    assert.equal(rest.length, 500);
    assert.equal(rest[0].seq, 4501n);
  });

  test('items() lists every record in key order', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3], 1), item('b', [4, 5, 6], 2), item('c', [7, 8, 9], 3)]);
    cat.deleteBatch(['b']);
    const all = [...cat.items()];
    assert.deepEqual(all.map((r) => [r.id, r.key]), [['a', 1n], ['c', 3n]]);
    assert.deepEqual(bitsOf(all[1].vector), bitsOf(vec(3)));
  });

  test('close and reopen keeps items, postings and counters', async () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3], 1), item('b', [1, 2, 4], 2)]);
    cat.deleteBatch(['a']);
    cat.truncateChanges(1n);
    await cat.close();
    assert.throws(() => cat.get('b'), code('SIDX_ERR_STORE'));
    cat = Catalog.open(dir, { firstKey: 1000n });
    assert.equal(cat.count, 1);
    assert.equal(cat.lastSeq, 3n);
    assert.equal(cat.dim, D);
    assert.deepEqual(bitsOf(cat.get('b')!.vector), bitsOf(vec(2)));
    assert.deepEqual(cat.hamming1(1, Int32Array.of(1, 2, 3), 10).map((n) => n.key), [2n]);
    assert.deepEqual([...cat.changesSince(1n)].map((c) => c.seq), [2n, 3n]);
    assert.throws(() => cat.changesSince(0n), code('SIDX_ERR_STORE'));
    // firstKey is ignored for an existing catalog; the counter continues.
    assert.deepEqual(cat.upsertBatch(1, [item('c', [1, 1, 1])]).keys, BigInt64Array.of(3n));
    assert.throws(() => cat.upsertBatch(1, [item('d', [1, 1, 1], 1, 4)]), code('SIDX_ERR_DIMENSION'));
  });

  test('reads validate their input', () => {
    cat.upsertBatch(1, [item('a', [1, 2, 3])]);
    assert.throws(() => cat.exact(1, Int32Array.of(1, 2), 10), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.hamming1(1, Int32Array.of(1, 2, 3, 4), 10), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.prefix(1, Int32Array.of(1, 2, 3, 4), 10), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.exact(1, Int32Array.of(1, 2, 3), -1), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.getByKey(-1n), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.recordOf(-1n), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cat.recordOf(1n << 63n), code('SIDX_ERR_INVALID_INPUT'));
    assert.equal(cat.recordOf(1n)!.id, 'a');
    assert.deepEqual(cat.exact(1, Int32Array.of(1, 2, 3), 0), new BigInt64Array(0));
    assert.deepEqual(cat.exact(9, Int32Array.of(1, 2), 10), new BigInt64Array(0)); // unknown model: nothing
    assert.deepEqual(cat.hamming1(9, Int32Array.of(1, 2), 10), []);
  });
});
