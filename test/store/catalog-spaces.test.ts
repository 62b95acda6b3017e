import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from 'lmdb';
import { Catalog, CATALOG_SCHEMA_VERSION } from '../../src/store/catalog.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';

const D = 4;
const vec = (seed: number) => Float32Array.from({ length: D }, (_, j) => Math.sin(seed * 3.1 + j));
const codes = (...c: number[]) => Int32Array.from(c);
const keysOf = (a: BigInt64Array) => Array.from(a, Number);

test('a second key space: side SIDs with postings, dual-write upserts, active-model reads, drop with promotion', async () => {
  const { dir, cleanup } = tempDir('sidx-spaces-');
  const cat = Catalog.open(dir);
  try {
    // Model 1 (2 levels) is in the records; model 2 (3 levels) is being built.
    cat.upsertBatch(1, [
      { id: 'a', codes: codes(1, 1), vector: vec(1) },
      { id: 'b', codes: codes(1, 2), vector: vec(2) },
      { id: 'c', codes: codes(2, 2), vector: vec(3) },
    ]);
    assert.deepEqual(cat.spaces.putSids(2, [{ key: 1n, codes: codes(5, 5, 5) }, { key: 2n, codes: codes(5, 5, 6) }, { key: 99n, codes: codes(0, 0, 0) }]),
      { written: 2, skipped: 1 });
    assert.deepEqual(cat.spaces.putSids(2, [{ key: 1n, codes: codes(7, 7, 7) }]), { written: 0, skipped: 1 }, 'an existing SID is kept (replayed batch)');
    assert.throws(() => cat.spaces.putSids(2, [{ key: 3n, codes: codes(1, 1) }]), { code: 'SIDX_ERR_INVALID_INPUT' }, 'levels are per model');
    assert.deepEqual(keysOf(cat.exact(2, codes(5, 5, 5), 10)), [1]);
    assert.deepEqual(cat.hamming1(2, codes(5, 5, 5), 10).map((n) => Number(n.key)), [2]);
    assert.deepEqual(keysOf(cat.exact(1, codes(1, 1), 10)), [1], 'the served key space is untouched');
    assert.deepEqual(cat.get('a')!.codes, codes(1, 1));
    assert.deepEqual(cat.spaces.sidIn(1n, 2), codes(5, 5, 5));
    let report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
    assert.equal(report.sides, 2);
    assert.equal(report.postings, 3 * 2 + 2 * 3);

    // Upserts during the re-index write both key spaces; a plain upsert drops the item's other SIDs.
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 3), vector: vec(4) }, { id: 'd', codes: codes(3, 3), vector: vec(5) }],
      { model: 2, codes: [codes(6, 6, 6), codes(6, 6, 7)] });
    assert.deepEqual(keysOf(cat.exact(2, codes(5, 5, 5), 10)), [], 'the old side SID of a is gone');
    assert.deepEqual(keysOf(cat.exact(2, codes(6, 6, 6), 10)), [1]);
    assert.deepEqual(keysOf(cat.exact(2, codes(6, 6, 7), 10)), [4]);
    cat.upsertBatch(1, [{ id: 'b', codes: codes(1, 2), vector: vec(2) }]);
    assert.equal(cat.spaces.sidIn(2n, 2), undefined, 'a re-upsert without alt leaves no stale SID');
    cat.deleteBatch(['d']);
    assert.deepEqual(keysOf(cat.exact(2, codes(6, 6, 7), 10)), [], 'delete removes side postings');
    assert.throws(() => cat.upsertBatch(1, [{ id: 'x', codes: codes(1, 1), vector: vec(9) }], { model: 1, codes: [codes(1, 1)] }));
    report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));

    // Fill the rest (b, c), then swap: reads report model 2.
    cat.spaces.putSids(2, [{ key: 2n, codes: codes(5, 5, 6) }, { key: 3n, codes: codes(4, 4, 4) }]);
    cat.spaces.setActiveModel(2);
    assert.deepEqual(cat.get('a')!.codes, codes(6, 6, 6));
    assert.equal(cat.get('a')!.model, 2);
    assert.deepEqual(cat.getByKey(3n)!.codes, codes(4, 4, 4));

    // Drop model 1: records move to model 2 (vectors unchanged), model 1 postings go.
    const dropped = cat.spaces.dropSpace(1, 2, BigInt64Array.of(1n, 2n, 3n, 77n));
    assert.deepEqual(dropped, { promoted: 3, removed: 0, orphans: [] });
    assert.deepEqual(keysOf(cat.prefix(1, new Int32Array(0), 100)), []);
    assert.deepEqual(keysOf(cat.prefix(2, new Int32Array(0), 100)).sort(), [1, 2, 3]);
    assert.deepEqual(cat.get('c')!.vector, vec(3));
    report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
    assert.equal(report.sides, 0);

    // An item with no SID in the kept model is reported, not changed.
    cat.upsertBatch(2, [{ id: 'e', codes: codes(1, 1, 1), vector: vec(6) }]);
    assert.deepEqual(cat.spaces.dropSpace(2, 3, BigInt64Array.of(5n)).orphans, [5n]);
  } finally {
    await cat.close();
  }

  // Reopen: the active key space is remembered.
  const again = Catalog.open(dir);
  try {
    assert.equal(again.spaces.activeModel, 2);
  } finally {
    await again.close();
    cleanup();
  }
});

test('a schema-1, -4, -5 or -6 catalog opens as schema 7 (no side entries, SID log started, vectors in the vector file, all rotations, one change per change-log entry, no stored SID counts); other schemas are refused', async () => {
  const { dir, cleanup } = tempDir('sidx-spaces-');
  try {
    const cat = Catalog.open(dir);
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 1), vector: vec(1) }]);
    await cat.close();
    const setSchema = async (v: number) => {
      const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
      const meta = env.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary' });
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v);
      meta.putSync(Buffer.from('schema'), b);
      await env.close();
    };
    await setSchema(1);
    const upgraded = Catalog.open(dir);
    assert.deepEqual(upgraded.get('a')!.codes, codes(1, 1));
    await upgraded.close();
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
    assert.equal(CATALOG_SCHEMA_VERSION, 7);
    assert.deepEqual([report.naturalOnly, report.postings], [false, 2], 'a 2-level SID: both rotations');
    await setSchema(4);
    const four = Catalog.open(dir, { postingRotations: 'natural' }); // an existing catalog keeps its rotations
    four.upsertBatch(1, [{ id: 'b', codes: codes(2, 2), vector: vec(2) }]);
    await four.close();
    const after = await verifyCatalog(dir);
    assert.ok(after.ok, after.problems.join('\n'));
    assert.deepEqual([after.naturalOnly, after.postings], [false, 4]);
    // Schema 5 wrote one change-log entry per change: here the two single-item batches above, packs of one.
    await setSchema(5);
    const five = Catalog.open(dir);
    five.upsertBatch(1, [{ id: 'c', codes: codes(3, 3), vector: vec(3) }, { id: 'd', codes: codes(3, 4), vector: vec(4) }]);
    assert.deepEqual([...five.changesSince(0n)].map((c) => [c.seq, c.key]), [[1n, 1n], [2n, 2n], [3n, 3n], [4n, 4n]]);
    five.truncateChanges(3n); // the last batch's pack (seqs 3-4) straddles: it stays, its seq 3 is skipped
    assert.deepEqual([...five.changesSince(3n)].map((c) => c.seq), [4n]);
    await five.close();
    const six = await verifyCatalog(dir);
    assert.ok(six.ok, six.problems.join('\n'));
    assert.equal(six.changes, 1);
    await setSchema(6);
    await Catalog.open(dir).close();
    assert.ok((await verifyCatalog(dir)).ok);
    await setSchema(8);
    assert.throws(() => Catalog.open(dir), /catalog schema 8 is not supported/);
  } finally {
    cleanup();
  }
});
