/**
 * Pipelined upserts (Catalog.upsertBatchPipelined -> CatalogTxns.pipeline / writeAsync): the commit on lmdb-js's
 * write thread, what each publishes after it (SID counts, posting changes, the seq the SID reads report), the rows
 * a batch reserves while the one before it commits, what a refused body leaves, and which writes wait.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Catalog } from '../../src/store/catalog.ts';
import type { PostingChanges } from '../../src/store/posting-journal.ts';
import { assertCatalogVerifies } from '../helpers/catalog-checks.ts';
import { tempDir } from '../helpers/paths.ts';

const item = (id: string, codes: number[], seed = 1) => ({ id, codes: Int32Array.from(codes), vector: new Float32Array(4).fill(seed) });

/** Records the posting changes each committed transaction hands the watcher. */
function watch(cat: Catalog): string[][] {
  const seen: string[][] = [];
  cat.spaces.watchPostings({
    wants: () => true,
    apply: (c: PostingChanges) => {
      seen.push(Array.from({ length: c.length }, (_, i) => `${c.removed(i) ? '-' : '+'}${c.key(i)}:${Array.from(c.codes(i)).join('.')}`));
    },
  });
  return seen;
}

test('a pipelined upsert publishes its SID counts, postings and seq once committed; a change-log cut meanwhile keeps them', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  const cat = Catalog.open(dir);
  try {
    const seen = watch(cat);
    cat.upsertBatch(1, [item('a', [1, 2])]);
    const before = cat.lastSeq;
    const staged = cat.upsertBatchPipelined(1, [item('b', [1, 2]), item('c', [3, 4])]);
    cat.truncateChanges(cat.lastSeq); // a vector checkpoint's sync write, while the upsert is in flight
    assert.equal(cat.get('b'), undefined, 'not committed yet');
    const { committed } = await staged; // its body has run; the commit is on lmdb-js's write thread
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 1, 'counts are published after the commit only');
    assert.equal(cat.sids.seq(), before, 'the SID reads report the seq their tries reflect');
    const res = await committed;
    assert.deepEqual(res.replaced, [false, false]);
    assert.equal(cat.sids.seq(), res.seq);
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 2);
    assert.equal(cat.sids.trie(1).trie!.count([3, 4]), 1);
    assert.deepEqual(seen, [['+1:1.2'], ['+2:1.2', '+3:3.4']], 'one change set per committed transaction, in order');

    // A re-upsert that moves b: its old posting goes, the new one comes, in the same change set.
    await (await cat.upsertBatchPipelined(1, [item('b', [3, 4], 2)])).committed;
    assert.deepEqual(seen[2], ['-2:1.2', '+2:3.4']);
    assert.deepEqual([cat.sids.trie(1).trie!.count([1, 2]), cat.sids.trie(1).trie!.count([3, 4])], [1, 2]);
    assert.deepEqual(Array.from(cat.get('b')!.vector), [2, 2, 2, 2]);
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('the next batch is pipelined while the one before commits: rows apart, changes in order, the same id twice', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  const cat = Catalog.open(dir);
  try {
    const seen = watch(cat);
    cat.upsertBatch(1, [item('a', [1, 1], 1), item('b', [2, 2], 2)]);
    cat.deleteBatch(['a']); // row 0 is free
    const first = await cat.upsertBatchPipelined(1, [item('c', [3, 3], 3), item('b', [4, 4], 4)]);
    const second = await cat.upsertBatchPipelined(1, [item('d', [5, 5], 5), item('b', [6, 6], 6)]);
    const [r1, r2] = await Promise.all([first.committed, second.committed]);
    assert.deepEqual([...r1.slots], [0, 2], 'the free row first, then a new one');
    // Row 1 (b's first) may be free for the second batch or not, depending on whether the first had committed.
    assert.ok([...r2.slots].every((s) => s !== 0 && s !== 2) && r2.slots[0] !== r2.slots[1], `none of the rows the batch before it holds: ${r2.slots}`);
    assert.ok(r2.seq > r1.seq);
    assert.deepEqual([r1.replaced, r2.replaced], [[false, true], [false, true]]);
    assert.deepEqual(seen.slice(2), [['+3:3.3', '-2:2.2', '+2:4.4'], ['+4:5.5', '-2:4.4', '+2:6.6']]);
    assert.deepEqual(Array.from(cat.get('b')!.vector), [6, 6, 6, 6], 'the later batch wins');
    assert.deepEqual(Array.from(cat.get('c')!.vector), [3, 3, 3, 3]);
    assert.deepEqual(Array.from(cat.get('d')!.vector), [5, 5, 5, 5]);
    assert.deepEqual([cat.sids.trie(1).trie!.count([4, 4]), cat.sids.trie(1).trie!.count([6, 6])], [0, 1]);
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('a pipelined upsert refused inside its transaction commits nothing of it: rows, counts, postings', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  const cat = Catalog.open(dir);
  try {
    const seen = watch(cat);
    cat.upsertBatch(1, [item('a', [1, 2])]);
    // 3 codes where model 1 has 2 levels: refused inside the transaction, after its rows were taken there.
    const refused = await cat.upsertBatchPipelined(1, [item('x', [1, 2, 3]), item('y', [1, 2, 3])]);
    await assert.rejects(refused.committed, { code: 'SIDX_ERR_INVALID_INPUT' });
    assert.equal(cat.get('x'), undefined);
    assert.equal(cat.count, 1);
    assert.equal(seen.length, 1, 'the refused batch published no postings');
    const next = await (await cat.upsertBatchPipelined(1, [item('b', [1, 2])])).committed;
    assert.deepEqual([...next.slots], [1], 'nextSlot did not move for the refused batch');
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 2);
    assert.equal(cat.sids.seq(), cat.lastSeq);
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('while a pipelined upsert is in flight other writes are refused and change nothing; close waits for it', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  let cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [item('a', [1, 2])]);
    const staged = cat.upsertBatchPipelined(1, [item('b', [5, 6], 2)]);
    const refusal = { code: 'SIDX_ERR_STORE', message: /while an upsert commits/ };
    assert.throws(() => cat.deleteBatch(['a']), refusal);
    assert.throws(() => cat.upsertBatch(1, [item('c', [1, 2], 3)]), refusal);
    await assert.rejects(cat.upsertBatchPipelined(1, [item('d', [1, 2], 4)]), refusal, 'one batch at a time before its body');
    cat.truncateChanges(cat.lastSeq); // no item, count or posting: allowed
    const closed = cat.close();
    await (await staged).committed;
    await closed;
    cat = Catalog.open(dir);
    assert.deepEqual([cat.count, cat.get('a')?.id, cat.get('c'), cat.get('d')], [2, 'a', undefined, undefined], 'the refused writes changed nothing');
    assert.deepEqual(Array.from(cat.get('b')!.vector), [2, 2, 2, 2], "no refused batch wrote over the pipelined one's row");
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 1);
    await assertCatalogVerifies(dir);
  } finally {
    await cat.close();
    cleanup();
  }
});
