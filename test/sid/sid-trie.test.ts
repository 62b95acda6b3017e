import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SidTrie, SidTrieBuilder } from '../../src/sid/sid-trie.ts';
import { decodeTrie, encodeTrie } from '../../src/sid/trie-format.ts';
import { seededUniform } from '../../src/random.ts';

const next = (t: SidTrie, p: number[]) => {
  const n = t.next(p);
  return { codes: Array.from(n.codes), counts: Array.from(n.counts) };
};

test('SidTrie: counts per prefix, removal down to empty, refused underflow, lexicographic listing', () => {
  const t = new SidTrie(3);
  t.add([5, 1, 1], 2);
  t.add([0, 9, 3], 1);
  t.add([5, 0, 7], 1);
  t.add([5, 1, 0], 1);
  assert.deepEqual(next(t, []), { codes: [0, 5], counts: [1, 4] });
  assert.deepEqual(next(t, [5]), { codes: [0, 1], counts: [1, 3] });
  assert.deepEqual(next(t, [5, 1]), { codes: [0, 1], counts: [1, 2] });
  assert.deepEqual(next(t, [5, 1, 1]), { codes: [], counts: [] }, 'a full SID has nothing to extend');
  assert.deepEqual(next(t, [4]), { codes: [], counts: [] });
  assert.equal(t.size, 4);
  assert.equal(t.items, 5);
  const out = new Int32Array(t.size * 3);
  assert.equal(t.writeSids(out), 4);
  assert.deepEqual(Array.from(out), [0, 9, 3, 5, 0, 7, 5, 1, 0, 5, 1, 1]);

  assert.throws(() => t.add([5, 0, 7], -2), { code: 'SIDX_ERR_STORE' });
  assert.throws(() => t.add([1, 1, 1], -1), { code: 'SIDX_ERR_STORE' });
  assert.equal(t.items, 5, 'a refused removal changes nothing');
  t.add([5, 0, 7], -1);
  t.add([5, 1, 1], -2);
  assert.deepEqual(next(t, [5]), { codes: [1], counts: [1] });
  assert.equal(t.count([5, 1, 1]), 0);
  assert.equal(t.size, 2);
});

test('SidTrieBuilder: the trie of sorted SIDs equals the one added SID by SID, and takes writes after', () => {
  for (const levels of [1, 2, 3]) {
    const seen = new Map<string, number[]>();
    const uniform = seededUniform(7 * levels);
    const rand = (n: number) => Math.floor(uniform() * n);
    for (let i = 0; i < 500; i++) {
      const codes = Array.from({ length: levels }, () => rand(levels === 1 ? 300 : 6));
      seen.set(codes.join(','), codes);
    }
    const sids = [...seen.values()].sort((a, b) => a.reduce((d, x, l) => d || x - b[l]!, 0));
    const added = new SidTrie(levels);
    const builder = new SidTrieBuilder(levels);
    for (const [i, codes] of sids.entries()) {
      added.add(codes, 1 + (i % 5));
      builder.pushBigEndian(Uint8Array.from(codes.flatMap((c) => [c >> 8, c & 0xff])), 0, 1 + (i % 5));
    }
    const built = builder.build();
    assert.equal(built.size, added.size);
    assert.equal(built.items, added.items);
    const list = (t: SidTrie) => { const out = new Int32Array(t.size * levels); t.writeSids(out); return Array.from(out); };
    assert.deepEqual(list(built), list(added));
    for (const codes of sids) {
      for (let l = 0; l < levels; l++) assert.deepEqual(next(built, codes.slice(0, l)), next(added, codes.slice(0, l)));
      assert.equal(built.count(codes), added.count(codes));
    }
    const extra = Array.from({ length: levels }, () => 299);
    for (const t of [built, added]) { t.add(extra, 2); t.add(sids[0]!, -1); }
    assert.deepEqual(list(built), list(added));
    assert.equal(built.items, added.items);
  }
  assert.equal(new SidTrieBuilder(3).build().size, 0);
  assert.throws(() => SidTrie.fromSorted(2, [1, 2, 1, 1], [1, 1], 2), { code: 'SIDX_ERR_STORE' }, 'out of order');
  assert.throws(() => SidTrie.fromSorted(2, [1, 2], [0], 1), { code: 'SIDX_ERR_STORE' }, 'an empty SID');
});

test('SidTrie.next shares one answer per prefix until a write under it', () => {
  const t = new SidTrie(2);
  t.add([1, 1], 1);
  t.add([2, 1], 1);
  const a = t.next([1]);
  assert.equal(t.next([1]), a, 'same object while unchanged');
  t.add([2, 2], 1);
  assert.equal(t.next([1]), a, 'a write elsewhere keeps it');
  t.add([1, 3], 1);
  const b = t.next([1]);
  assert.notEqual(b, a);
  assert.deepEqual(Array.from(a.codes), [1], 'an earlier answer is not modified');
  assert.deepEqual(Array.from(b.codes), [1, 3]);
});

test('SIDT binary: round trip, header fields, refused input', () => {
  const msg = { levels: 2, kind: 'delta' as const, seq: 2n ** 40n + 3n, since: 7n, added: Uint16Array.of(1, 2, 65535, 0), removed: Uint16Array.of(3, 4) };
  const buf = encodeTrie(msg);
  assert.equal(buf.length, 32 + 2 * 6);
  assert.equal(buf.toString('latin1', 0, 4), 'SIDT');
  assert.deepEqual([buf[4], buf[5], buf[6], buf[7]], [1, 2, 2, 1]);
  assert.equal(buf.readBigUInt64LE(8), msg.seq);
  assert.equal(buf.readUInt32LE(24), 2);
  assert.equal(buf.readUInt32LE(28), 1);
  assert.equal(buf.readUInt16LE(32 + 4), 65535);
  assert.deepEqual(decodeTrie(buf), msg);
  assert.throws(() => decodeTrie(buf.subarray(0, 40)), /header says/);
  const bad = Buffer.from(buf);
  bad.write('XIDT', 0, 'latin1');
  assert.throws(() => decodeTrie(bad), /no SIDT header/);
});
