import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BEAM, CandidateSet, CandidateSetPool, EXACT, HAMMING1, keyWords, MATCH_KINDS, PREFIX, type MatchCode } from '../../src/service/candidate-set.ts';
import { ownThenBeam, uniqueSids } from '../../src/service/candidates.ts';
import { candidateCounts } from '../../src/service/retrieve-steps.ts';
import { rng } from '../helpers/random.ts';

/** Keys whose words collide in one half (few distinct high words, many repeated low words), and the largest key. */
function collidingKeys(n: number, seed: number): BigInt64Array {
  const r = rng(seed);
  const keys = BigInt64Array.from({ length: n }, (_, i) => {
    const hi = BigInt(Math.floor(r() * 4));
    const lo = BigInt(i % 3 === 0 ? Math.floor(r() * 64) : Math.floor(r() * 2 ** 32));
    return (hi << 32n) | lo;
  });
  keys[0] = (1n << 63n) - 1n;
  return keys;
}

test('CandidateSet keeps each key once, in first-seen order, with its match kind, growing past its initial capacity', () => {
  const keys = collidingKeys(20_000, 3);
  const words = keyWords(keys);
  const set = new CandidateSet(10); // starts at 64: doubles many times
  const order: bigint[] = [];
  const kinds: MatchCode[] = [];
  const seen = new Set<bigint>();
  keys.forEach((key, i) => {
    const kind = (i % 4) as MatchCode;
    const fresh = i % 2 === 0 ? set.add(words[2 * i]!, words[2 * i + 1]!, kind) : set.addKey(key, kind);
    assert.equal(fresh, !seen.has(key), `key ${key}`);
    if (fresh) {
      seen.add(key);
      order.push(key);
      kinds.push(kind);
    }
  });
  assert.ok(seen.size > 10_000 && seen.size < keys.length, 'both fresh and repeated keys');
  assert.equal(set.count, seen.size);
  assert.deepEqual(Array.from(set.keys), order);
  assert.deepEqual(Array.from(set.match), kinds);
  assert.equal(set.key(0), (1n << 63n) - 1n);
  assert.equal(set.matchOf(1), MATCH_KINDS[kinds[1]!]);
  for (const code of [EXACT, HAMMING1, BEAM, PREFIX] as const) assert.equal(set.countOf(code), kinds.filter((k) => k === code).length);
  assert.deepEqual(candidateCounts(set), {
    exact: set.countOf(EXACT), hamming1: set.countOf(HAMMING1), beam: set.countOf(BEAM), prefix: set.countOf(PREFIX), total: seen.size,
  });
  for (const key of order.slice(0, 500)) assert.equal(set.addKey(key, EXACT), false);
  assert.equal(set.count, seen.size, 'repeats add nothing');
});

test('CandidateSet.addRows takes a span\'s new keys until the budget, across growth, and says whether room is left', () => {
  const keys = BigInt64Array.from([5n, 7n, 5n, 9n, 11n, 7n, 13n, 1n << 40n, 5n]);
  const words = keyWords(keys);
  const set = new CandidateSet(1);
  assert.equal(set.addRows(words, 0, 3, BEAM, 100), true); // 5, 7 (5 again skipped)
  assert.deepEqual(Array.from(set.keys), [5n, 7n]);
  assert.equal(set.addRows(words, 2, 9, PREFIX, 5), false); // 9, 11, 13: full at 5
  assert.deepEqual(Array.from(set.keys), [5n, 7n, 9n, 11n, 13n]);
  assert.deepEqual(Array.from(set.match), [BEAM, BEAM, PREFIX, PREFIX, PREFIX]);
  assert.equal(set.addRows(words, 7, 8, PREFIX, 5), false, 'a full set takes nothing');
  assert.equal(set.count, 5);
  assert.equal(set.addRows(words, 0, 9, EXACT, 6), false); // only 1 << 40 is new, and fills it
  assert.deepEqual(candidateCounts(set), { exact: 1, hamming1: 0, beam: 2, prefix: 3, total: 6 });

  // Spans long enough to grow the set mid-span (64 to 8192 slots), with repeats inside the span.
  const many = collidingKeys(20_000, 5);
  const big = new CandidateSet(64);
  const reference = [...new Set(many)];
  assert.equal(big.addRows(keyWords(many), 0, many.length, EXACT, 1_000_000), true);
  assert.deepEqual(Array.from(big.keys), reference);
  assert.equal(big.countOf(EXACT), reference.length);
});

test('a reset CandidateSet holds only the new candidates (reused arrays, or smaller ones after a large budget)', () => {
  const set = new CandidateSet(100);
  const first = collidingKeys(30_000, 7);
  set.addRows(keyWords(first), 0, first.length, BEAM, 100_000); // grows to 32768
  for (const expected of [100, 50_000, 3]) {
    set.reset(expected);
    assert.equal(set.count, 0);
    assert.deepEqual(candidateCounts(set), { exact: 0, hamming1: 0, beam: 0, prefix: 0, total: 0 });
    const next = BigInt64Array.from([first[1]!, 42n, first[1]!, first[2]!]);
    assert.equal(set.addRows(keyWords(next), 0, next.length, PREFIX, expected), expected > 3);
    assert.deepEqual(Array.from(set.keys), [first[1]!, 42n, first[2]!].slice(0, expected));
    assert.equal(set.addKey(42n, HAMMING1), false);
    assert.equal(set.countOf(BEAM), 0);
  }
});

test('ownThenBeam and uniqueSids keep the first of equal SIDs, in order', () => {
  const own = Int32Array.of(1, 2, 3);
  const codes = Int32Array.of(1, 2, 4, /* own */ 1, 2, 3, 1, 2, 4, 0, 0, 0, 65536, 0, 0, 0, 1, 0);
  const out = ownThenBeam(own, codes, 6, 3);
  assert.deepEqual(out.map((s) => Array.from(s)), [[1, 2, 3], [1, 2, 4], [0, 0, 0], [65536, 0, 0], [0, 1, 0]]);
  assert.equal(out[1]!.buffer, codes.buffer, 'views into the beam\'s codes');
  // Many SIDs (hash collisions and growth of the table), longer SIDs than 3 levels.
  const r = rng(9);
  const L = 5;
  const wide = Int32Array.from({ length: 400 * L }, () => Math.floor(r() * 3));
  const seen = new Set<string>(['0,0,0,0,0']);
  const expected = [[0, 0, 0, 0, 0]];
  for (let b = 0; b < 400; b++) {
    const sid = Array.from(wide.subarray(b * L, (b + 1) * L));
    if (!seen.has(sid.join())) expected.push(sid);
    seen.add(sid.join());
  }
  assert.deepEqual(ownThenBeam(new Int32Array(L), wide, 400, L).map((s) => Array.from(s)), expected);

  const given = [Int32Array.of(1, 2), Int32Array.of(1, 2, 0), Int32Array.of(1, 2), new Int32Array(0), Int32Array.of(1, 2, 0), new Int32Array(0)];
  const unique = uniqueSids(given);
  assert.deepEqual(unique.map((s) => Array.from(s)), [[1, 2], [1, 2, 0], []]);
  assert.notEqual(unique[0], given[0], 'copies');
});

test('CandidateSetPool hands a given-back set out again, emptied, and keeps at most its maximum', () => {
  const pool = new CandidateSetPool(2);
  const a = pool.take(100);
  a.add(7, 0, EXACT);
  a.add(9, 0, BEAM);
  assert.equal(a.count, 2);
  pool.give(a);
  assert.equal(pool.size, 1);
  const again = pool.take(100);
  assert.equal(again, a, 'the same set');
  assert.equal(again.count, 0);
  assert.equal(again.countOf(EXACT), 0);
  assert.ok(again.add(7, 0, HAMMING1), 'a key of its previous use is new again');
  assert.notEqual(pool.take(100), again, 'an empty pool makes a new set');
  for (const set of [new CandidateSet(), new CandidateSet(), new CandidateSet()]) pool.give(set);
  assert.equal(pool.size, 2);
});
