import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CandidateSet } from '../../src/service/candidate-set.ts';
import { gatherCandidates, gathering } from '../../src/service/candidates.ts';
import { candidateCounts } from '../../src/service/retrieve-steps.ts';
import { keysInOrderParts } from '../../src/service/code-layout.ts';
import { LivePostings } from '../../src/service/live-postings.ts';
import { FoldThread } from '../../src/service/posting-fold-thread.ts';
import { PostingIndex } from '../../src/service/posting-index.ts';
import { Catalog, type UpsertInput } from '../../src/store/catalog.ts';
import { tempDir } from '../helpers/paths.ts';
import { keysInOrder } from '../helpers/posting-order.ts';
import { rng } from '../helpers/random.ts';

const LEVELS = 3;
const K = 4;
const log = { info: () => {}, warn: (msg: string) => assert.fail(`unexpected warning: ${msg}`) };

/** A candidate set's contents as plain values (deepEqual does not see a class's private fields). */
function candidates(set: CandidateSet) {
  return { keys: Array.from(set.keys), match: Array.from(set.match), counts: candidateCounts(set) };
}

/** The index answers every scan as the catalog's LMDB scans do, query by query (keys, order, limits). */
function assertSameScans(index: PostingIndex, catalog: Catalog, model: number, r: () => number, what: string): void {
  const code = () => Int32Array.from({ length: LEVELS }, () => Math.floor(r() * K));
  const all = catalog.prefix(model, new Int32Array(0), 1_000_000);
  assert.equal(index.count, all.length, `${what}: rows`);
  assert.deepEqual(index.prefix(model, new Int32Array(0), 1_000_000), all, `${what}: whole key space`);
  assert.deepEqual(keysInOrder(index), all, `${what}: keys in SID order (the codes' layout)`);
  const parts = keysInOrderParts(index, 50);
  let pauses = 0;
  let part = parts.next();
  for (; !part.done; part = parts.next()) pauses++;
  assert.deepEqual(part.value, all, `${what}: keys in SID order, taken in parts`);
  assert.ok(pauses <= Math.min(K, all.length / 50) && (all.length < 50 || pauses > 0), `${what}: ${pauses} pauses for ${all.length} keys`);
  for (let q = 0; q < 40; q++) {
    const sid = code();
    for (const limit of [0, 1, 3, 40, 100_000]) {
      assert.deepEqual(index.exact(model, sid, limit), catalog.exact(model, sid, limit), `${what}: exact ${sid} limit ${limit}`);
      for (let p = 0; p < LEVELS; p++) {
        const prefix = sid.slice(0, p);
        assert.deepEqual(index.prefix(model, prefix, limit), catalog.prefix(model, prefix, limit), `${what}: prefix ${prefix} limit ${limit}`);
      }
      assert.deepEqual(index.hamming1(model, sid, limit), catalog.hamming1(model, sid, limit), `${what}: hamming1 ${sid} limit ${limit}`);
    }
    // A beam query's candidates (the index is read in place there, not through exact/prefix): duplicates across
    // levels, budgets that end inside a scan.
    const beam = Array.from({ length: LEVELS }, (_, l) => {
      const width = 1 + Math.floor(r() * 6);
      return { level: l + 1, width, codes: Int32Array.from({ length: width * (l + 1) }, () => Math.floor(r() * K)), scores: new Float32Array(width) };
    });
    for (const max of [1, 7, 50, 100_000]) {
      const expected = candidates(gatherCandidates(catalog, model, [sid], 'beam', 10, max, undefined, beam));
      // Both ways through the index: one native call (the default), and the JS scans it replaces.
      assert.deepEqual(candidates(gatherCandidates(index, model, [sid], 'beam', 10, max, undefined, beam)), expected, `${what}: beam candidates, budget ${max}`);
      gathering.native = false;
      try {
        assert.deepEqual(candidates(gatherCandidates(index, model, [sid], 'beam', 10, max, undefined, beam)), expected, `${what}: beam candidates in JS, budget ${max}`);
      } finally {
        gathering.native = true;
      }
    }
  }
}

test('the live posting index follows upserts, SID changes, deletes, moves between key spaces and a re-index, scan for scan', async () => {
  const tmp = tempDir();
  const catalog = Catalog.open(tmp.dir);
  const live = new LivePostings(catalog, log, true, 200); // folds every ~200 changes: main, dead rows and delta all in play
  try {
    const r = rng(11);
    const code = () => Int32Array.from({ length: LEVELS }, () => Math.floor(r() * K));
    const item = (id: string): UpsertInput => ({ id, codes: code(), vector: Float32Array.of(r(), r()) });
    let next = 0;
    const ids: string[] = [];
    /** n distinct ids written so far (a batch may not name an id twice). */
    const pick = (n: number) => {
      const out = new Set<string>();
      while (out.size < Math.min(n, ids.length)) out.add(ids[Math.floor(r() * ids.length)]!);
      return [...out];
    };
    live.track(1, LEVELS); // an empty catalog: the index starts empty and grows with the writes
    const index = () => live.index(1)!;
    for (let round = 0; round < 14; round++) {
      const fresh = Array.from({ length: 250 }, () => `i${next++}`);
      ids.push(...fresh);
      const res = catalog.upsertBatch(1, fresh.map(item));
      // Read-your-writes: once the upsert returned, its items are found by their SIDs.
      assert.ok(index().exact(1, catalog.get(fresh[0]!)!.codes, 1000).includes(res.keys[0]!));
      // Re-upserts: most change SID (1 in 64 draws keeps it).
      catalog.upsertBatch(1, pick(300).map(item));
      catalog.deleteBatch([...pick(60), 'never-written']);
      // Items moved to key space 2 leave key space 1's postings; writes of an untracked space change nothing here.
      catalog.upsertBatch(2, pick(20).map(item));
      assertSameScans(index(), catalog, 1, r, `round ${round}`);
    }
    assert.ok(index().compactions > 0, 'delta and dead rows were folded into the main run');

    // A re-index to key space 3: upserts write both spaces, batches give the rest SIDs there, then the swap and the drop.
    live.track(3, LEVELS);
    const alt = (items: UpsertInput[]) => ({ model: 3, codes: items.map(() => code()) });
    const during = pick(200).map(item);
    catalog.upsertBatch(1, during, alt(during));
    assertSameScans(live.index(3)!, catalog, 3, r, 'target after upserts');
    const keys = catalog.spaces.keysAfter(0n, 65_536);
    for (let i = 0; i < keys.length; i += 500) {
      catalog.spaces.putSids(3, Array.from(keys.subarray(i, i + 500), (key) => ({ key, codes: code() })));
      const more = [item(`late${i}`)];
      catalog.upsertBatch(1, more, alt(more));
      assertSameScans(live.index(3)!, catalog, 3, r, `target after batch ${i}`);
    }
    catalog.spaces.setActiveModel(3);
    // The drop removes key space 1. The service stops tracking it at the swap; here it is still tracked through a
    // drop batch committed on the main thread, to check the drop's changes reach an index. The rest is dropped off
    // the main thread (not journaled where the drop runs on a thread of its own), untracked as in the service.
    catalog.spaces.dropSpace(1, 3, keys.subarray(0, 1000));
    assertSameScans(index(), catalog, 1, r, 'old space, part dropped');
    live.untrack(1);
    for (let after = keys[999]!; ;) {
      const batch = await catalog.spaces.dropAfterOffThread(after, 65_536, 1, 3);
      if (!batch) break;
      after = batch.last;
    }
    catalog.upsertBatch(3, pick(100).map(item));
    catalog.deleteBatch(ids.slice(0, 100));
    assertSameScans(live.index(3)!, catalog, 3, r, 'served after the swap and drop');
    // A fresh build from LMDB holds the same rows as the index that followed the writes.
    const rebuilt = new LivePostings(catalog, log, true);
    rebuilt.track(3, LEVELS);
    assertSameScans(rebuilt.index(3)!, catalog, 3, r, 'rebuilt');
    await rebuilt.close();
  } finally {
    await live.close();
    await catalog.close();
    tmp.cleanup();
  }
});

test('inputs the catalog refuses get the catalog\'s own errors; without an index the catalog answers', async () => {
  const tmp = tempDir();
  const catalog = Catalog.open(tmp.dir);
  const live = new LivePostings(catalog, log, true);
  try {
    catalog.upsertBatch(1, [{ id: 'a', codes: Int32Array.of(1, 2, 3), vector: Float32Array.of(1, 0) }]);
    live.track(1, LEVELS);
    const index = live.source(1);
    assert.notEqual(index, catalog);
    for (const [fn, codes] of [['exact', Int32Array.of(1, 2)], ['prefix', Int32Array.of(1, 2, 3, 4)], ['hamming1', Int32Array.of(1, 70_000, 3)]] as const) {
      assert.throws(() => index[fn](1, codes, 5), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_INVALID_INPUT', fn);
    }
    assert.throws(() => index.exact(1, Int32Array.of(1, 2, 3), -1), /limit/);
    // A beam query's native gathering leaves what it cannot take to the JS scans: a SID of another length or with a
    // code out of range gets the catalog's error there, another key space the catalog's scans.
    const live1 = live.index(1)!;
    const beam = [1, 2, 3].map((level) => ({ level, width: 1, codes: Int32Array.from({ length: level }, (_, l) => l + 1), scores: new Float32Array(1) }));
    const set = new CandidateSet(4);
    assert.equal(live1.gatherBeam(1, [Int32Array.of(1, 2)], beam, 5, 5, set), false);
    assert.equal(live1.gatherBeam(1, [Int32Array.of(1, 70_000, 3)], beam, 5, 5, set), false);
    assert.equal(live1.gatherBeam(2, [Int32Array.of(1, 2, 3)], beam, 5, 5, set), false);
    assert.equal(set.count, 0, 'nothing gathered by a refused call');
    assert.throws(() => gatherCandidates(index, 1, [Int32Array.of(1, 2)], 'beam', 5, 5, undefined, beam), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_INVALID_INPUT');
    assert.equal(live1.gatherBeam(1, [Int32Array.of(1, 2, 3)], beam, 5, 5, set), true);
    assert.deepEqual(Array.from(set.keys), [1n]);
    assert.deepEqual(candidates(set), candidates(gatherCandidates(catalog, 1, [Int32Array.of(1, 2, 3)], 'beam', 5, 5, undefined, beam)));
    assert.deepEqual(index.exact(1, Int32Array.of(1, 2, 3), 5), BigInt64Array.of(1n));
    assert.equal(live.source(2), catalog);
    assert.equal(new LivePostings(catalog, log, false).source(1), catalog);
    // An index that cannot be built (here: told the wrong level count) is logged, and LMDB answers.
    const warnings: string[] = [];
    const wrong = new LivePostings(catalog, { info: () => {}, warn: (m) => warnings.push(m) }, true);
    wrong.track(1, 2);
    assert.equal(wrong.source(1), catalog);
    assert.match(warnings.join('\n'), /not built/);
    live.track(1, LEVELS);
  } finally {
    await live.close();
    await catalog.close();
    tmp.cleanup();
  }
});

/** A fresh catalog for `fn`, closed and removed after it. */
async function withCatalog(fn: (catalog: Catalog) => Promise<void>): Promise<void> {
  const tmp = tempDir();
  const catalog = Catalog.open(tmp.dir);
  try {
    await fn(catalog);
  } finally {
    catalog.spaces.watchPostings(undefined);
    await catalog.close();
    tmp.cleanup();
  }
}

/** Items with random SIDs (LEVELS x K) drawn from `r`. */
function randomItems(r: () => number): (id: string) => UpsertInput {
  const code = () => Int32Array.from({ length: LEVELS }, () => Math.floor(r() * K));
  return (id) => ({ id, codes: code(), vector: Float32Array.of(r(), r()) });
}

test('a large index folds on the fold thread: the scans stay the catalog\'s while a fold is out, and after its run comes back', () => withCatalog(async (catalog) => {
  // Folds every ~200 changes, on the thread once the main run holds 500 rows.
  const live = new LivePostings(catalog, log, true, 200, 500);
  try {
    const r = rng(29);
    const item = randomItems(r);
    const ids = Array.from({ length: 800 }, (_, i) => `i${i}`);
    catalog.upsertBatch(1, ids.map(item));
    live.track(1, LEVELS); // built from LMDB: a main run of 800 rows
    const index = live.index(1)!;
    for (let round = 0; round < 6; round++) {
      const before = index.compactions;
      // Re-upserts that change SIDs (dead rows in main, rows in delta) until a fold starts ...
      while (index.folding === null) catalog.upsertBatch(1, ids.slice(round * 97 % 600, round * 97 % 600 + 120).map(item));
      const folding = index.folding;
      assert.equal(index.compactions, before, 'the fold is out on the thread, not done in place');
      // ... then writes while it is out: applied to the runs the scans read now, and replayed on the folded run.
      catalog.upsertBatch(1, ids.slice(700, 760).map(item));
      catalog.deleteBatch([ids[round]!, ids[round + 100]!]);
      catalog.upsertBatch(1, [item(`new${round}`), item(ids[round]!)]);
      assertSameScans(index, catalog, 1, r, `round ${round}, fold out`);
      await folding;
      assert.equal(index.compactions, before + 1, 'the folded run was swapped in');
      assertSameScans(index, catalog, 1, r, `round ${round}, after the fold`);
    }
    assert.equal(live.index(1), index, 'the index was never dropped');
  } finally {
    await live.close();
  }
}));

test('a fold the thread cannot run is done in place, and close() drops a fold that is out', () => withCatalog(async (catalog) => {
  const r = rng(5);
  const item = randomItems(r);
  const ids = Array.from({ length: 600 }, (_, i) => `i${i}`);
  catalog.upsertBatch(1, ids.map(item));
  const closed = new FoldThread();
  await closed.close();
  const threadErrors: string[] = [];
  const index = new PostingIndex(1, LEVELS, catalog.spaces.postingsOf(1, LEVELS), catalog, 100,
    { thread: closed, minRows: 1, onFailure: (err) => assert.fail(err.message), onThreadError: (err) => threadErrors.push(err.message) });
  catalog.spaces.watchPostings({ wants: (m) => m === 1, apply: (c) => index.apply(c) });
  while (index.folding === null) catalog.upsertBatch(1, ids.slice(0, 60).map(item)); // 120 changes: over minDelta
  await index.folding;
  assert.equal(index.compactions, 1, 'folded in place after the thread refused');
  assert.deepEqual(threadErrors, ['the fold thread is closed'], 'the owner is told (the service logs it)');
  assertSameScans(index, catalog, 1, r, 'after the fold in place');

  // A fold out when the owner stops using the index: its result is dropped, the runs stay as they were.
  const live = new LivePostings(catalog, log, true, 100, 1);
  live.track(1, LEVELS);
  const tracked = live.index(1)!;
  while (tracked.folding === null) catalog.upsertBatch(1, ids.slice(100, 160).map(item));
  const out = tracked.folding;
  await live.close();
  await out;
  assert.equal(tracked.compactions, 0, 'no run swapped in after close');
}));

test('keys in SID order taken in parts with writes between them: every key the writes left alone comes once, in order', async () => {
  const tmp = tempDir();
  const catalog = Catalog.open(tmp.dir);
  const live = new LivePostings(catalog, log, true);
  try {
    const r = rng(5);
    const code = () => Int32Array.from({ length: LEVELS }, () => Math.floor(r() * K));
    const item = (id: string): UpsertInput => ({ id, codes: code(), vector: Float32Array.of(r(), r()) });
    catalog.upsertBatch(1, Array.from({ length: 400 }, (_, i) => item(`a${i}`)));
    live.track(1, LEVELS);
    const keyOf = (id: string) => catalog.get(id)!.key;
    const parts = keysInOrderParts(live.index(1)!, 1); // a pause after each first-level code
    let part = parts.next();
    const touched = new Set<bigint>();
    for (let i = 0; !part.done; i++, part = parts.next()) {
      // Between parts: a new item, an item moved to another SID, one deleted.
      const moved = item(`a${i * 7}`);
      touched.add(keyOf(moved.id));
      catalog.upsertBatch(1, [item(`new${i}`), moved]);
      touched.add(keyOf(`new${i}`));
      touched.add(keyOf(`a${i * 7 + 1}`));
      catalog.deleteBatch([`a${i * 7 + 1}`]);
    }
    const untouched = catalog.prefix(1, new Int32Array(0), 1_000_000).filter((k) => !touched.has(k));
    assert.ok(untouched.length > 350);
    assert.deepEqual(part.value.filter((k) => !touched.has(k)), untouched, 'the keys no write touched, once each, in SID order');
  } finally {
    await live.close();
    await catalog.close();
    tmp.cleanup();
  }
});
