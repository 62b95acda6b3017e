import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Catalog } from '../../src/store/catalog.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { rng } from '../helpers/random.ts';

const D = 3;
const N = 150;

/** Items in model 1 (3 levels); all but the last two also get a SID in model 2 (2 levels), then model 2 is served. */
function fill(cat: Catalog, seed: number): void {
  const rand = rng(seed);
  const code = () => Math.floor(rand() * 4);
  cat.upsertBatch(1, Array.from({ length: N }, (_, i) => ({
    id: `i${i}`, codes: Int32Array.of(code(), code(), code()), vector: Float32Array.from({ length: D }, () => rand()),
  })));
  cat.spaces.putSids(2, Array.from({ length: N - 2 }, (_, i) => ({ key: BigInt(i + 1), codes: Int32Array.of(code(), code()) })));
  cat.spaces.setActiveModel(2);
}

const sidsOf = (cat: Catalog, model: number, levels: number) => {
  const trie = cat.sids.trie(model).trie;
  if (!trie) return [];
  const flat = new Int32Array(trie.size * levels);
  return Array.from(flat.subarray(0, trie.writeSids(flat) * levels));
};

test('drop batches on the drop thread leave the catalog as one synchronous dropSpace does; orphans are reported untouched', async () => {
  const a = tempDir('sidx-drop-sync-');
  const b = tempDir('sidx-drop-thread-');
  const sync = Catalog.open(a.dir);
  const threaded = Catalog.open(b.dir);
  try {
    fill(sync, 5);
    fill(threaded, 5);
    const dropAt = threaded.lastSeq;
    const expected = sync.spaces.dropSpace(1, 2, BigInt64Array.from({ length: N }, (_, i) => BigInt(i + 1)));

    let after = 0n;
    const got = { promoted: 0, removed: 0, orphans: [] as bigint[], batches: 0 };
    for (;;) {
      const batch = await threaded.spaces.dropAfterOffThread(after, 17, 1, 2);
      if (!batch) break;
      assert.ok(batch.n > 0 && batch.n <= 17 && batch.last > after, 'a batch moves the cursor forward by at most its limit');
      after = batch.last;
      got.promoted += batch.promoted;
      got.removed += batch.removed;
      got.orphans.push(...batch.orphans);
      got.batches++;
    }
    assert.equal(got.batches, Math.ceil(N / 17));
    assert.deepEqual({ promoted: got.promoted, removed: got.removed, orphans: got.orphans }, expected);
    assert.deepEqual(got.orphans, [BigInt(N - 1), BigInt(N)], 'items with no SID in the kept model');
    assert.equal(threaded.getByKey(BigInt(N))!.model, 1, 'an orphan keeps its record');

    // The main thread's tries follow the thread's commits: model 1 keeps only the orphans' SIDs, model 2 all.
    assert.deepEqual(sidsOf(threaded, 1, 3), sidsOf(sync, 1, 3));
    assert.deepEqual(sidsOf(threaded, 2, 2), sidsOf(sync, 2, 2));
    assert.equal(threaded.sids.delta(1, 3, dropAt).delta, undefined, 'no delta of the dropped space across the drop');
    for (let i = 0; i < N; i++) assert.deepEqual(threaded.get(`i${i}`), sync.get(`i${i}`));
    assert.deepEqual(Array.from(threaded.prefix(1, new Int32Array(0), 1000)), Array.from(sync.prefix(1, new Int32Array(0), 1000)));
  } finally {
    await sync.close();
    await threaded.close();
  }
  try {
    const report = await verifyCatalog(b.dir);
    assert.ok(report.ok, report.problems.join('\n'));
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('a drop batch commits while the main thread is busy: its work runs on the drop thread', async () => {
  const { dir, cleanup } = tempDir('sidx-drop-busy-');
  const cat = Catalog.open(dir);
  try {
    fill(cat, 9);
    assert.ok(await cat.spaces.dropAfterOffThread(0n, 10, 1, 2), 'first batch (starts the thread)');
    const file = join(dir, 'data.mdb');
    const before = statSync(file, { bigint: true }).mtimeNs;
    const pending = cat.spaces.dropAfterOffThread(10n, 50, 1, 2);
    await new Promise((r) => setImmediate(r));
    // Block the event loop: a batch whose work needed it (as lmdb-js's async transaction callback does) cannot
    // commit now, so the data file would not change before the deadline.
    const deadline = Date.now() + 20_000;
    let committed = false;
    while (!committed && Date.now() < deadline) committed = statSync(file, { bigint: true }).mtimeNs !== before;
    assert.ok(committed, 'the batch committed while the event loop was blocked');
    const batch = await pending;
    assert.equal(batch?.n, 50);
    assert.equal(cat.spaces.sidIn(11n, 1), undefined, 'the dropped SID is gone for main-thread reads');
  } finally {
    await cat.close();
    cleanup();
  }
});

test('close() stops a started drop thread, and the catalog reopens', async () => {
  const { dir, cleanup } = tempDir('sidx-drop-close-');
  const cat = Catalog.open(dir);
  try {
    fill(cat, 3);
    await cat.spaces.dropAfterOffThread(0n, 5, 1, 2);
  } finally {
    await cat.close();
  }
  const again = Catalog.open(dir);
  try {
    assert.equal(again.getByKey(1n)!.model, 2, 'the first batch was durable');
    await assert.rejects(cat.spaces.dropAfterOffThread(5n, 5, 1, 2), /catalog is closed/);
  } finally {
    await again.close();
    cleanup();
  }
});
