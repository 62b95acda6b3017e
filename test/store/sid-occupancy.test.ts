import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open, type RootDatabase } from 'lmdb';
import { Catalog } from '../../src/store/catalog.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { SidTrie } from '../../src/sid/sid-trie.ts';
import { u64Key } from '../../src/store/keys.ts';
import { tempDir } from '../helpers/paths.ts';
import { rng } from '../helpers/random.ts';

const D = 2;
const L = 3;
const vec = (seed: number) => Float32Array.from({ length: D }, (_, j) => Math.cos(seed + j));
const codes = (...c: number[]) => Int32Array.from(c);
const text = (c: ArrayLike<number>) => Array.from(c).join('-');

/** Items per SID of `model`, counted from the records and side entries. */
function bruteCounts(cat: Catalog, model: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const rec of cat.items()) {
    const sid = cat.spaces.sidIn(rec.key, model);
    if (sid) out.set(text(sid), (out.get(text(sid)) ?? 0) + 1);
  }
  return out;
}

function allSids(trie: SidTrie | undefined, levels: number): string[] {
  if (!trie) return [];
  const flat = new Int32Array(trie.size * levels);
  const n = trie.writeSids(flat);
  return Array.from({ length: n }, (_, i) => text(flat.subarray(i * levels, (i + 1) * levels)));
}

/** The trie agrees with a brute-force count: every SID, and `next` for every occupied prefix and a few empty ones. */
function assertMatches(cat: Catalog, model: number, levels: number, what: string): void {
  const brute = bruteCounts(cat, model);
  const trie = cat.sids.trie(model).trie;
  const sids = [...brute.keys()].map((t) => t.split('-').map(Number));
  const sorted = [...sids].sort((a, b) => {
    const l = a.findIndex((c, j) => c !== b[j]);
    return l < 0 ? 0 : a[l]! - b[l]!;
  });
  assert.deepEqual(allSids(trie, levels), sorted.map(text), `${what}: occupied SIDs`);
  const prefixes = new Set<string>(['']);
  for (const s of sids) for (let l = 1; l <= levels; l++) prefixes.add(text(s.slice(0, l)));
  prefixes.add('9999');
  for (const p of prefixes) {
    const prefix = p === '' ? [] : p.split('-').map(Number);
    const expected = new Map<number, number>();
    if (prefix.length < levels) {
      for (const [t, n] of brute) {
        const s = t.split('-').map(Number);
        if (prefix.every((c, l) => s[l] === c)) expected.set(s[prefix.length]!, (expected.get(s[prefix.length]!) ?? 0) + n);
      }
    }
    const want = [...expected.entries()].sort((a, b) => a[0] - b[0]);
    const got = trie?.next(prefix) ?? { codes: [], counts: [] };
    assert.deepEqual({ codes: Array.from(got.codes), counts: Array.from(got.counts) },
      { codes: want.map((e) => e[0]), counts: want.map((e) => e[1]) }, `${what}: next(${p})`);
  }
}

/** Applies a delta to a snapshot (sets of SID text). */
function applyDelta(before: string[], delta: { added: Int32Array; removed: Int32Array }, levels: number): string[] {
  const set = new Set(before);
  const rows = (flat: Int32Array) => Array.from({ length: flat.length / levels }, (_, i) => text(flat.subarray(i * levels, (i + 1) * levels)));
  for (const r of rows(delta.removed)) {
    assert.ok(set.has(r), `removed ${r} was not occupied`);
    set.delete(r);
  }
  for (const r of rows(delta.added)) {
    assert.ok(!set.has(r), `added ${r} was already occupied`);
    set.add(r);
  }
  return [...set].sort();
}

test('SID counts and the trie follow upserts, replacements and deletes; deltas equal the difference of snapshots', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  let cat = Catalog.open(dir);
  try {
    const rand = rng(7);
    const code = () => Math.floor(rand() * 3);
    const snapshots = new Map<bigint, string[]>();
    snapshots.set(0n, []);
    for (let round = 0; round < 30; round++) {
      if (round % 4 === 3) {
        const ids = Array.from({ length: 3 }, () => `i${Math.floor(rand() * 25)}`);
        cat.deleteBatch([...new Set(ids)]);
      } else {
        const ids = [...new Set(Array.from({ length: 5 }, () => `i${Math.floor(rand() * 25)}`))];
        cat.upsertBatch(1, ids.map((id, i) => ({ id, codes: codes(code(), code(), code()), vector: vec(round * 10 + i) })));
      }
      snapshots.set(cat.lastSeq, allSids(cat.sids.trie(1).trie, L).sort());
      assertMatches(cat, 1, L, `round ${round}`);
    }
    const last = cat.lastSeq;
    for (const [since, before] of snapshots) {
      const { delta, seq } = cat.sids.delta(1, L, since);
      assert.equal(seq, last);
      assert.ok(delta, `delta from ${since}`);
      assert.deepEqual(applyDelta(before, delta, L), snapshots.get(last), `delta from ${since}`);
    }
    assert.equal(cat.sids.delta(1, L, last + 1n).delta, undefined, 'a seq in the future has no delta');
    assert.deepEqual(cat.sids.delta(1, L, last).delta, { added: new Int32Array(0), removed: new Int32Array(0) });

    // After a restart the tries are counted from the postings and deltas still cover the earlier seqs.
    await cat.close();
    cat = Catalog.open(dir);
    assertMatches(cat, 1, L, 'after reopen');
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
    const first = [...snapshots.keys()][3]!;
    assert.deepEqual(applyDelta(snapshots.get(first)!, cat.sids.delta(1, L, first).delta!, L), snapshots.get(last));
  } finally {
    await cat.close();
    cleanup();
  }
});

test('an item added then removed after SEQ is in neither list; a SID emptied and refilled is in neither', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  const cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 1, 1), vector: vec(1) }]);
    const since = cat.lastSeq;
    cat.upsertBatch(1, [{ id: 'b', codes: codes(2, 2, 2), vector: vec(2) }]);
    cat.deleteBatch(['b', 'a']);
    cat.upsertBatch(1, [{ id: 'c', codes: codes(1, 1, 1), vector: vec(3) }]);
    assert.deepEqual(cat.sids.delta(1, L, since).delta, { added: new Int32Array(0), removed: new Int32Array(0) });
    cat.upsertBatch(1, [{ id: 'c', codes: codes(0, 5, 5), vector: vec(3) }]);
    assert.deepEqual(cat.sids.delta(1, L, since).delta, { added: codes(0, 5, 5), removed: codes(1, 1, 1) });
  } finally {
    await cat.close();
    cleanup();
  }
});

test('the log keeps sidHistory entries: a delta from before them is not offered', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  const cat = Catalog.open(dir, { sidHistory: 4 });
  try {
    for (let i = 0; i < 12; i++) cat.upsertBatch(1, [{ id: `x${i}`, codes: codes(i, 0, 0), vector: vec(i) }]);
    assert.equal(cat.sids.delta(1, L, 0n).delta, undefined);
    const recent = cat.sids.delta(1, L, 10n).delta!;
    assert.deepEqual(recent, { added: codes(10, 0, 0, 11, 0, 0), removed: new Int32Array(0) });
  } finally {
    await cat.close();
    cleanup();
  }
});

test('the tries load from postings read already (the live posting index\'s scan) as from LMDB', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  try {
    let cat = Catalog.open(dir);
    const rand = rng(11);
    const code = () => Math.floor(rand() * 4);
    cat.upsertBatch(1, Array.from({ length: 60 }, (_, i) => ({ id: `i${i}`, codes: codes(code(), code(), code()), vector: vec(i) })));
    cat.deleteBatch(['i3', 'i7']);
    cat.spaces.putSids(2, [{ key: 1n, codes: codes(4, 4) }, { key: 2n, codes: codes(4, 4) }, { key: 5n, codes: codes(0, 1) }]);
    await cat.close();
    cat = Catalog.open(dir, { deferSids: true });
    try {
      const scanned = cat.spaces.postingsOf(1, L);
      assert.equal(scanned.count, 58);
      cat.sids.load(new Map([[1, scanned]]));
      assertMatches(cat, 1, L, 'model 1, from the scanned postings');
      assertMatches(cat, 2, 2, 'model 2, from LMDB');
      assert.equal(cat.sids.trie(2).trie!.count(codes(4, 4)), 2);
    } finally {
      await cat.close();
    }
    // The seed is taken as given, not read again: one that is not the catalog's shows.
    cat = Catalog.open(dir, { deferSids: true });
    try {
      cat.sids.load(new Map([[1, { count: 3, codes: Uint16Array.of(0, 1, 2, 9, 9, 9, 9, 9, 9) }]]));
      assert.deepEqual(allSids(cat.sids.trie(1).trie, L), ['0-1-2', '9-9-9']);
      assert.equal(cat.sids.trie(1).trie!.count(codes(9, 9, 9)), 2);
    } finally {
      await cat.close();
    }
  } finally {
    cleanup();
  }
});

test('re-index key spaces: putSids takes a seq and fills the target trie; dropping a space empties its counts', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  const cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 1, 1), vector: vec(1) }, { id: 'b', codes: codes(1, 2, 1), vector: vec(2) }]);
    const before = cat.lastSeq;
    cat.spaces.putSids(2, [{ key: 1n, codes: codes(4, 4) }, { key: 2n, codes: codes(4, 5) }]);
    assert.equal(cat.lastSeq, before + 1n, 'a writing re-index batch takes one seq');
    cat.spaces.putSids(2, [{ key: 1n, codes: codes(4, 4) }]);
    assert.equal(cat.lastSeq, before + 1n, 'a batch that writes nothing takes none');
    assertMatches(cat, 2, 2, 'target');
    assert.deepEqual(cat.sids.delta(2, 2, before).delta, { added: codes(4, 4, 4, 5), removed: new Int32Array(0) });
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 1, 2), vector: vec(3) }], { model: 2, codes: [codes(4, 6)] });
    assertMatches(cat, 1, L, 'served, dual write');
    assertMatches(cat, 2, 2, 'target, dual write');
    const beforeSwap = cat.lastSeq;
    cat.spaces.setActiveModel(2);
    assert.equal(cat.lastSeq, beforeSwap + 1n, 'a swap takes one seq');
    assert.equal(cat.spaces.servedFromSeq, cat.lastSeq);
    const dropAt = cat.lastSeq;
    cat.spaces.dropSpace(1, 2, BigInt64Array.of(1n, 2n));
    assert.equal(cat.sids.trie(1).trie?.size ?? 0, 0, 'the dropped space has no SIDs left');
    assertMatches(cat, 2, 2, 'kept after drop');
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
    assert.equal(cat.sids.delta(1, L, dropAt).delta, undefined, 'a dropped space offers no delta across the drop');
  } finally {
    await cat.close();
    cleanup();
  }
});

test('a schema-2 catalog gets its SID tries from the postings and its log started at open', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  try {
    let cat = Catalog.open(dir);
    cat.upsertBatch(1, [
      { id: 'a', codes: codes(1, 1, 1), vector: vec(1) }, { id: 'b', codes: codes(1, 1, 1), vector: vec(2) },
      { id: 'c', codes: codes(0, 3, 1), vector: vec(3) },
    ]);
    cat.spaces.putSids(2, [{ key: 1n, codes: codes(4, 4) }]);
    const seq = cat.lastSeq;
    await cat.close();
    // What an older sidx leaves: schema 2, no sidCounts or sidLog content.
    const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
    const db = (name: string) => env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
    await db('sidCounts').drop();
    await db('sidLog').drop();
    await db('meta').put(Buffer.from('schema'), Buffer.of(0, 0, 0, 2));
    await env.close();
    cat = Catalog.open(dir);
    assertMatches(cat, 1, L, 'back-filled model 1');
    assertMatches(cat, 2, 2, 'back-filled model 2');
    assert.equal(cat.sids.trie(1).trie!.count(codes(1, 1, 1)), 2);
    assert.equal(cat.sids.delta(1, L, seq - 1n).delta, undefined, 'no history before the back-fill');
    assert.deepEqual(cat.sids.delta(1, L, seq).delta, { added: new Int32Array(0), removed: new Int32Array(0) });
    await cat.close();
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
  } finally {
    cleanup();
  }
});

test('verify checks the SID log\'s entries and that no SID gained more items than its postings hold', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  try {
    const cat = Catalog.open(dir);
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 1, 1), vector: vec(1) }, { id: 'b', codes: codes(1, 1, 1), vector: vec(2) }]);
    cat.upsertBatch(1, [{ id: 'c', codes: codes(3, 3, 3), vector: vec(3) }]);
    cat.deleteBatch(['c']);
    const seq = cat.lastSeq;
    await cat.close();
    assert.ok((await verifyCatalog(dir)).ok);
    const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
    const log = env.openDB<Buffer, Buffer>({ name: 'sidLog', encoding: 'binary', keyEncoding: 'binary' });
    const key = (at: bigint) => Buffer.concat([u64Key(at), Buffer.of(0, 1)]);
    const change = (sid: number[], delta: number) => {
      const b = Buffer.alloc(2 * sid.length + 4);
      sid.forEach((c, l) => b.writeUInt16BE(c, 2 * l));
      b.writeInt32BE(delta, 2 * sid.length);
      return b;
    };
    await log.put(key(seq + 1n), Buffer.concat([Buffer.of(3), change([1, 1, 1], 1), change([2, 2, 2], 1), change([3, 3, 3], -1)]));
    await log.put(key(seq + 2n), Buffer.of(3, 0, 1)); // not a whole change
    await log.put(key(seq + 3n), Buffer.concat([Buffer.of(2), change([4, 4], 1)])); // model 1 has 3 levels
    await env.close();
    const report = await verifyCatalog(dir);
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems, [
      `sidLog entry ${key(seq + 2n).toString('hex')}: malformed (3 bytes)`,
      `sidLog ${seq + 3n}/1: SIDs of 2 levels, the model has 3`,
      'sidLog: SID 0001000100010001 gained 3 items since the log\'s floor, the postings hold 2',
      'sidLog: SID 0001000200020002 gained 1 items since the log\'s floor, the postings hold 0',
    ]);
  } finally {
    cleanup();
  }
});

/** The named databases of `env` (lmdb-js stores each name with a trailing NUL in the root database). */
function databaseNames(env: RootDatabase<Buffer, Buffer>): string[] {
  return Array.from(env.getKeys({}), (k) => Buffer.from(k as Buffer).toString('latin1').replace(/\0$/, ''));
}

test('a schema-6 catalog loses its stored SID counts at open and starts its log afresh', async () => {
  const { dir, cleanup } = tempDir('sidx-occ-');
  try {
    let cat = Catalog.open(dir);
    cat.upsertBatch(1, [{ id: 'a', codes: codes(1, 1, 1), vector: vec(1) }, { id: 'b', codes: codes(2, 1, 1), vector: vec(2) }]);
    const seq = cat.lastSeq;
    await cat.close();
    const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
    const counts = env.openDB<Buffer, Buffer>({ name: 'sidCounts', encoding: 'binary', keyEncoding: 'binary' });
    await counts.put(Buffer.of(0, 1, 0, 1, 0, 1, 0, 1), Buffer.of(0, 0, 0, 1));
    // Schema 6's log: one entry per SID that turned occupied (1) or empty (2).
    const log = env.openDB<Buffer, Buffer>({ name: 'sidLog', encoding: 'binary', keyEncoding: 'binary' });
    await log.put(Buffer.concat([u64Key(1n), Buffer.of(0, 1, 0, 1, 0, 1, 0, 1)]), Buffer.of(1));
    await env.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary' }).put(Buffer.from('schema'), Buffer.of(0, 0, 0, 6));
    assert.ok(databaseNames(env).includes('sidCounts'));
    await env.close();
    cat = Catalog.open(dir);
    assertMatches(cat, 1, L, 'after the upgrade');
    assert.equal(cat.sids.delta(1, L, seq - 1n).delta, undefined, 'the log starts afresh at the upgrade');
    assert.deepEqual(cat.sids.delta(1, L, seq).delta, { added: new Int32Array(0), removed: new Int32Array(0) });
    cat.upsertBatch(1, [{ id: 'c', codes: codes(3, 1, 1), vector: vec(3) }]);
    assert.deepEqual(cat.sids.delta(1, L, seq).delta, { added: codes(3, 1, 1), removed: new Int32Array(0) });
    await cat.close();
    const after = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
    try {
      assert.ok(!databaseNames(after).includes('sidCounts'), 'sidCounts dropped');
      assert.equal(after.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary' }).get(Buffer.from('schema'))!.readUInt32BE(0), 7);
    } finally {
      await after.close();
    }
    const report = await verifyCatalog(dir);
    assert.ok(report.ok, report.problems.join('\n'));
  } finally {
    cleanup();
  }
});
