/**
 * Upserts that commit on lmdb-js's write thread (Catalog.upsertBatchAsync -> CatalogTxns.writeAsync): what they
 * publish after the commit (SID counts, posting changes), what a refused body leaves, and how synchronous writes
 * that commit meanwhile are kept apart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Catalog } from '../../src/store/catalog.ts';
import type { PostingChanges } from '../../src/store/posting-journal.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
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

test('an async upsert publishes its SID counts and postings once committed, and a change-log cut meanwhile keeps them', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  const cat = Catalog.open(dir);
  try {
    const seen = watch(cat);
    cat.upsertBatch(1, [item('a', [1, 2])]);
    const pending = cat.upsertBatchAsync(1, [item('b', [1, 2]), item('c', [3, 4])]);
    cat.truncateChanges(cat.lastSeq); // a vector checkpoint's sync write, while the upsert is pending
    assert.equal(cat.get('b'), undefined, 'not committed yet');
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 1, 'counts are published after the commit only');
    const res = await pending;
    assert.deepEqual(res.replaced, [false, false]);
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 2);
    assert.equal(cat.sids.trie(1).trie!.count([3, 4]), 1);
    assert.deepEqual(seen, [['+1:1.2'], ['+2:1.2', '+3:3.4']], 'one change set per committed transaction, in order');

    // A re-upsert that moves b: its old posting goes, the new one comes, in the same change set.
    await cat.upsertBatchAsync(1, [item('b', [3, 4], 2)]);
    assert.deepEqual(seen[2], ['-2:1.2', '+2:3.4']);
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 1);
    assert.equal(cat.sids.trie(1).trie!.count([3, 4]), 2);
    assert.deepEqual(Array.from(cat.get('b')!.vector), [2, 2, 2, 2]);
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
  } finally {
    await cat.close();
    cleanup();
  }
});

test('an async upsert refused inside its transaction commits nothing of it: rows, counts, postings', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  const cat = Catalog.open(dir);
  try {
    const seen = watch(cat);
    cat.upsertBatch(1, [item('a', [1, 2])]);
    // 3 codes where model 1 has 2 levels: refused inside the transaction, after its rows were taken there.
    await assert.rejects(cat.upsertBatchAsync(1, [item('x', [1, 2, 3]), item('y', [1, 2, 3])]), { code: 'SIDX_ERR_INVALID_INPUT' });
    assert.equal(cat.get('x'), undefined);
    assert.equal(cat.count, 1);
    assert.equal(seen.length, 1, 'the refused batch published no postings');
    const next = await cat.upsertBatchAsync(1, [item('b', [1, 2])]);
    assert.deepEqual([...next.slots], [1], 'nextSlot did not move for the refused batch');
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 2);
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
  } finally {
    await cat.close();
    cleanup();
  }
});

test('a synchronous write that changes postings is refused while an async upsert is pending; close waits for it', async () => {
  const { dir, cleanup } = tempDir('sidx-txns-');
  let cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [item('a', [1, 2])]);
    const pending = cat.upsertBatchAsync(1, [item('b', [5, 6], 2)]);
    assert.throws(() => cat.deleteBatch(['a']), { code: 'SIDX_ERR_STORE', message: /while an upsert commits/ });
    assert.throws(() => cat.upsertBatch(1, [item('c', [1, 2], 3)]), { code: 'SIDX_ERR_STORE', message: /while an upsert commits/ });
    await assert.rejects(cat.upsertBatchAsync(1, [item('d', [1, 2], 4)]), { code: 'SIDX_ERR_STORE', message: /while an upsert commits/ });
    cat.truncateChanges(cat.lastSeq); // no postings: allowed
    const closed = cat.close();
    await pending;
    await closed;
    cat = Catalog.open(dir);
    assert.deepEqual([cat.count, cat.get('a')?.id, cat.get('c'), cat.get('d')], [2, 'a', undefined, undefined], 'the refused writes changed nothing');
    assert.deepEqual(Array.from(cat.get('b')!.vector), [2, 2, 2, 2], 'no refused batch wrote over the pending one\'s row');
    assert.equal(cat.sids.trie(1).trie!.count([1, 2]), 1);
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
  } finally {
    await cat.close();
    cleanup();
  }
});
