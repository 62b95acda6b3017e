/**
 * Schema 4: each vector stored once, in the catalog's vector file (src/store/catalog-vectors.ts), the records naming
 * their row. Copy-on-write rows, the free list, a rejected batch, and the upgrade of a schema-3 catalog (vectors
 * inside the records), whole and resumed after an interruption; verifyCatalog checks the rows after each.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { open } from 'lmdb';
import { Catalog } from '../../src/store/catalog.ts';
import { META_NEXT_SLOT } from '../../src/store/catalog-vectors.ts';
import { readU64BE, u64Key } from '../../src/store/keys.ts';
import { readStoredRecord, writeInlineRecord } from '../../src/store/record.ts';
import { VECTOR_FILE } from '../../src/vector/vector-file.ts';
import { assertCatalogVerifies } from '../helpers/catalog-checks.ts';
import { tempDir } from '../helpers/paths.ts';

const D = 16;
const vec = (seed: number) => Float32Array.from({ length: D }, (_v, j) => Math.sin(seed * 3.1 + j) * 100 + seed);
const item = (id: string, seed: number, c = seed % 7) => ({ id, codes: Int32Array.of(c, (c * 3) % 5), vector: vec(seed) });

function rowsOf(dir: string): number {
  return statSync(join(dir, VECTOR_FILE)).size / (4 * D);
}

test('records name rows of the vector file: a re-upsert writes a new row, the old one is reused after its commit', async () => {
  const { dir, cleanup } = tempDir('sidx-rows-');
  const cat = Catalog.open(dir);
  try {
    const first = cat.upsertBatch(1, [item('a', 1), item('b', 2), item('c', 3)]);
    assert.deepEqual([...first.slots], [0, 1, 2]);
    assert.equal(rowsOf(dir), 3);
    assert.deepEqual(cat.readVectors([1]), vec(2));
    assert.equal(cat.recordOf(first.keys[1]!)!.slot, 1);

    // Copy-on-write: b's new vector goes to a fresh row while row 1 still holds the committed one.
    const again = cat.upsertBatch(1, [item('b', 20)]);
    assert.deepEqual([...again.slots], [3]);
    assert.deepEqual(cat.get('b')!.vector, vec(20));
    assert.deepEqual(cat.readVectors([1]), vec(2), 'the replaced row is not overwritten by its own batch');

    // Row 1 is free once that commit is in; a delete frees row 0; the next batch takes the lowest free rows first.
    cat.deleteBatch(['a']);
    const next = cat.upsertBatch(1, [item('d', 4), item('e', 5), item('f', 6)]);
    assert.deepEqual([...next.slots], [0, 1, 4]);
    for (const [id, seed] of [['b', 20], ['c', 3], ['d', 4], ['e', 5], ['f', 6]] as const) assert.deepEqual(cat.get(id)!.vector, vec(seed), id);
    assert.equal(cat.get('a'), undefined);
    assert.equal(rowsOf(dir), 5);
    assert.deepEqual(cat.itemsAfter(0n, 2).map((it) => it.vector), [vec(20), vec(3)], 'itemsAfter reads the rows of keys 2 and 3');
    assert.deepEqual(cat.itemsAfter(1000n, 10), []);
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('a batch rejected inside its transaction leaves its reserved rows free', async () => {
  const { dir, cleanup } = tempDir('sidx-rows-');
  const cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [item('a', 1)]);
    // 3 codes where model 1 has 2 levels: refused in the transaction, after the vectors went to rows 1-2.
    assert.throws(() => cat.upsertBatch(1, [{ id: 'x', codes: Int32Array.of(1, 2, 3), vector: vec(9) }, { id: 'y', codes: Int32Array.of(1, 2, 3), vector: vec(10) }]));
    assert.equal(cat.get('x'), undefined);
    const next = cat.upsertBatch(1, [item('b', 2)]);
    assert.deepEqual([...next.slots], [1], 'nextSlot did not move for the refused batch');
    assert.deepEqual(cat.get('b')!.vector, vec(2));
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('batches staged ahead commit in any order: distinct rows, nextSlot never moves back, rows of one that never commits are free', async () => {
  const { dir, cleanup } = tempDir('sidx-rows-');
  const cat = Catalog.open(dir);
  const batch = (ids: string[], seed: number) => ids.map((id, i) => item(id, seed + i));
  const commit = async (items: ReturnType<typeof batch>, staged: ReturnType<Catalog['stageBatch']>) => {
    try {
      return await (await cat.upsertBatchPipelined(1, items, undefined, undefined, staged)).committed;
    } finally {
      await staged.release();
    }
  };
  try {
    cat.upsertBatch(1, [item('a', 1), item('b', 2)]);
    cat.deleteBatch(['a']); // row 0 free
    const early = batch(['c', 'd'], 10);
    const late = batch(['e', 'f', 'g'], 20);
    const earlyRows = cat.stageBatch(early);
    const lateRows = cat.stageBatch(late);
    assert.deepEqual([...earlyRows.reserved.slots], [0, 2], 'the free row first, then past nextSlot');
    assert.deepEqual([...lateRows.reserved.slots], [3, 4, 5], 'rows the earlier reservation holds are skipped');
    const lateDone = await commit(late, lateRows);
    const earlyDone = await commit(early, earlyRows);
    assert.deepEqual([...lateDone.slots], [3, 4, 5]);
    assert.deepEqual([...earlyDone.slots], [0, 2]);
    const next = cat.upsertBatch(1, [item('h', 30)]);
    assert.deepEqual([...next.slots], [6], 'the earlier batch committed last did not move nextSlot back to 3');
    for (const it of [...early, ...late, item('b', 2), item('h', 30)]) assert.deepEqual(cat.get(it.id)!.vector, it.vector, it.id);

    // A batch that never commits (refused, or the process killed) below one that did: its rows are free, not lost.
    const abandoned = cat.stageBatch(batch(['p', 'q'], 50));
    const after = batch(['r'], 60);
    const afterRows = cat.stageBatch(after);
    assert.deepEqual([...(await commit(after, afterRows)).slots], [9]);
    await abandoned.release();
    await assertCatalogVerifies(dir);
    assert.deepEqual([...cat.upsertBatch(1, [item('s', 70), item('t', 71)]).slots], [...abandoned.reserved.slots]);
    assert.deepEqual([...abandoned.reserved.slots], [7, 8]);

    // Staged rows are only vectors on disk: a batch refused after staging commits nothing, its rows are taken again.
    const refused = [{ id: 'x', codes: Int32Array.of(1, 2, 3), vector: vec(40) }];
    const refusedRows = cat.stageBatch(refused);
    await assert.rejects(commit(refused, refusedRows), /2-level SIDs/);
    assert.equal(cat.get('x'), undefined);
    assert.deepEqual([...cat.upsertBatch(1, [item('y', 41)]).slots], [...refusedRows.reserved.slots]);
    assert.throws(() => cat.stageBatch([{ id: 'z', vector: new Float32Array(D + 1) }]), /holds 16-dimensional vectors/);
    assert.throws(() => cat.stageBatch([item('z', 42), item('z', 43)]), /appears twice/, 'a batch the catalog would refuse is not staged');
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('a record is a few dozen bytes: no vector inside it', async () => {
  const { dir, cleanup } = tempDir('sidx-rows-');
  const cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [item('item-1', 1)]);
  } finally {
    await cat.close();
  }
  const env = open<Buffer, Buffer>({ path: dir, readOnly: true, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary' });
  try {
    const items = env.openDB<Buffer, Buffer>({ name: 'items', encoding: 'binary', keyEncoding: 'binary' });
    const [{ value }] = [...items.getRange({})];
    assert.ok(value.length < 40, `record of ${value.length} bytes`);
  } finally {
    await env.close();
    cleanup();
  }
});

/**
 * Rewrites the catalog at `dir` as schema 3 would have stored it (`inline` records with their vector inside), or as
 * an upgrade interrupted after committing rows below `nextSlot` would have left it.
 */
async function downgrade(dir: string, inline: (index: number) => boolean, nextSlot: number): Promise<void> {
  const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
  const db = (name: string) => env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
  const [items, meta, free] = [db('items'), db('meta'), db('freeSlots')];
  const cat = Catalog.open(dir);
  const vectors = new Map<bigint, Float32Array>();
  for (const it of cat.items()) vectors.set(it.key, it.vector);
  await cat.close();
  await env.transaction(() => {
    [...items.getRange({})].forEach(({ key, value }, i) => {
      if (!inline(i)) return;
      const k = readU64BE(key, 0);
      const rec = readStoredRecord(value, k);
      void items.put(u64Key(k), writeInlineRecord(rec.model, rec.codes, Buffer.from(rec.id, 'utf8'), vectors.get(k)!));
    });
    for (const { key } of free.getRange({})) void free.remove(key);
    void meta.put(META_NEXT_SLOT, u64Key(BigInt(nextSlot)));
    const b = Buffer.alloc(4);
    b.writeUInt32BE(3);
    void meta.put(Buffer.from('schema'), b);
  });
  await env.close();
}

test('a schema-3 catalog is upgraded at open: every vector moves to the vector file, bit-exact; an interrupted upgrade resumes', async () => {
  const { dir, cleanup } = tempDir('sidx-rows-');
  try {
    const cat = Catalog.open(dir);
    const all = Array.from({ length: 25 }, (_v, i) => item(`i${i}`, i + 1));
    cat.upsertBatch(1, all);
    await cat.close();

    // Whole: no rows known, every record inline.
    await downgrade(dir, () => true, 0);
    let up = Catalog.open(dir);
    for (const [i, it] of all.entries()) assert.deepEqual(up.get(it.id)!.vector, vec(i + 1));
    await up.close();
    await assertCatalogVerifies(dir);

    // Interrupted: the first 10 records moved (rows 0-9 committed, as the whole upgrade above assigned them), the
    // rest still inline; their rows past nextSlot were written by a batch that never committed.
    await downgrade(dir, (i) => i >= 10, 10);
    up = Catalog.open(dir);
    for (const [i, it] of all.entries()) assert.deepEqual(up.get(it.id)!.vector, vec(i + 1));
    assert.equal(up.count, 25);
    await up.close();
    await assertCatalogVerifies(dir);
  } finally {
    cleanup();
  }
});
