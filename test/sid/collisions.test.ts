import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MapOccupancy,
  resolveCollisions,
  SidCounter,
  type CollisionStrategy,
  type SidOccupancy,
} from '../../src/sid/collisions.ts';
import { SidxError } from '../../src/errors.ts';
import { rng } from '../helpers/random.ts';

const empty: SidOccupancy = { count: () => 0 };

/**
 * n items over `levels` levels with the first levels crowded onto few prefixes, and top-M candidates per level:
 * the item's own code first, then a random order of other codes, with increasing distances.
 */
function crowded(n: number, levels: number, k: number, m: number, prefixes: number, seed: number) {
  const rand = rng(seed);
  const codes = new Int32Array(n * levels);
  const topCodes = new Int32Array(n * levels * m);
  const topDistances = new Float32Array(n * levels * m);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(rand() * prefixes);
    for (let l = 0; l < levels; l++) {
      const code = l < levels - 1 ? (p * 7 + l) % k : Math.floor(rand() * 3); // last level: only 3 popular codes
      codes[i * levels + l] = code;
      const perm = Array.from({ length: k }, (_, c) => c).filter((c) => c !== code);
      for (let j = perm.length - 1; j > 0; j--) {
        const r = Math.floor(rand() * (j + 1));
        [perm[j], perm[r]] = [perm[r], perm[j]];
      }
      const base = (i * levels + l) * m;
      topCodes[base] = code;
      topDistances[base] = rand();
      for (let r = 1; r < m; r++) {
        topCodes[base + r] = perm[r - 1];
        topDistances[base + r] = topDistances[base + r - 1] + rand();
      }
    }
  }
  return { codes, topCodes, topDistances, n, levels, topM: m };
}

function countsOf(codes: Int32Array, n: number, width: number): SidCounter {
  const counter = new SidCounter(width);
  for (let i = 0; i < n; i++) counter.add(codes, i * width);
  return counter;
}

const row = (codes: Int32Array, i: number, width: number) => [...codes.subarray(i * width, (i + 1) * width)];

test('SidCounter counts rows, grows past its initial size, and finds nothing absent', () => {
  const c = new SidCounter(3, 2);
  const codes = new Int32Array(3 * 5000);
  for (let i = 0; i < 5000; i++) codes.set([i % 7, i % 1000, i >> 3], i * 3);
  for (let i = 0; i < 5000; i++) c.add(codes, i * 3);
  assert.equal(c.size, 5000);
  assert.equal(c.count(Int32Array.from([1, 1, 0])), 1);
  assert.equal(c.count(Int32Array.from([0, 1, 0])), 0);
  assert.equal(c.find(Int32Array.from([0, 1, 0])), -1);
  c.add(Int32Array.from([1, 1, 0]), 0, 4);
  assert.equal(c.count(Int32Array.from([1, 1, 0])), 5);
  assert.deepEqual([...c.rowAt(c.find(Int32Array.from([1, 1, 0])))], [1, 1, 0]);
  let total = 0;
  for (const v of c.counts()) total += v;
  assert.equal(total, 5004);
});

test('none is the identity (a copy)', () => {
  const codes = Int32Array.from([1, 2, 1, 2, 3, 4]);
  const out = resolveCollisions({ kind: 'none' }, { codes, n: 3, levels: 2 }, empty);
  assert.deepEqual(out, { codes, moved: 0, unresolved: 0 });
  assert.notEqual(out.codes, codes);
});

test('cap: an overflow item takes its nearest alternative last-level code with room, else stays unresolved', () => {
  // four items on SID (0,0); each item's last-level candidates, best first: 0, 2, 1
  const codes = Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0]);
  const topCodes = new Int32Array(4 * 2 * 3);
  const topDistances = new Float32Array(4 * 2 * 3);
  for (let i = 0; i < 4; i++) {
    topCodes.set([0, 1, 2, 0, 2, 1], i * 6);
    topDistances.set([0.1, 0.2, 0.3, 0.1, 0.2, 0.3], i * 6);
  }
  const out = resolveCollisions({ kind: 'cap', cap: 1 }, { codes, topCodes, topDistances, n: 4, levels: 2 }, empty);
  assert.deepEqual([...out.codes], [0, 0, 0, 2, 0, 1, 0, 0]);
  assert.equal(out.moved, 2);
  assert.equal(out.unresolved, 1);

  // existing occupancy counts: (0,2) already full in the catalog, so the second item goes straight to (0,1)
  const catalog: SidOccupancy = { count: (sid) => (sid[0] === 0 && sid[1] === 2 ? 1 : 0) };
  const again = resolveCollisions({ kind: 'cap', cap: 1 }, { codes, topCodes, n: 4, levels: 2, topM: 3 }, catalog);
  assert.deepEqual([...again.codes], [0, 0, 0, 1, 0, 0, 0, 0]);
  assert.equal(again.moved, 1);
  assert.equal(again.unresolved, 2);

  // without candidates every overflow item is unresolved
  const bare = resolveCollisions({ kind: 'cap', cap: 2 }, { codes, n: 4, levels: 2 }, empty);
  assert.deepEqual(bare, { codes, moved: 0, unresolved: 2 });
});

test('cap is never exceeded when candidates cover the codebook, on random crowded data', () => {
  for (const seed of [1, 2, 3]) {
    const k = 16;
    const cap = 5;
    const batch = crowded(1000, 3, k, k, 16, seed); // 16 prefixes × 16 codes × cap 5 = 1280 seats
    const out = resolveCollisions({ kind: 'cap', cap }, batch, empty);
    const counts = countsOf(out.codes, batch.n, 3).counts();
    // with every code a candidate, an item stays unresolved only when all seats under its prefix are taken
    let expectedUnresolved = 0;
    for (const load of countsOf(batch.codes.filter((_, j) => j % 3 < 2), batch.n, 2).counts()) {
      expectedUnresolved += Math.max(0, load - cap * k);
    }
    assert.equal(out.unresolved, expectedUnresolved, `seed ${seed}`);
    if (expectedUnresolved === 0) assert.ok(Math.max(...counts) <= cap, `seed ${seed}: max ${Math.max(...counts)}`);
    assert.ok(out.moved > 400, `seed ${seed}: crowded data moves many items (${out.moved})`);
  }
});

test('cap with few candidates: excess over the cap equals the unresolved count; moves keep the prefix, in distance order', () => {
  const batch = crowded(3000, 3, 32, 4, 30, 7);
  const cap = 5;
  const out = resolveCollisions({ kind: 'cap', cap }, batch, empty);
  const final = countsOf(out.codes, batch.n, 3);
  let excess = 0;
  for (const c of final.counts()) excess += Math.max(0, c - cap);
  assert.ok(out.unresolved > 0);
  assert.equal(excess, out.unresolved);

  let moved = 0;
  const sid = new Int32Array(3);
  for (let i = 0; i < batch.n; i++) {
    assert.deepEqual(row(out.codes, i, 3).slice(0, 2), row(batch.codes, i, 3).slice(0, 2), `item ${i} keeps its prefix`);
    const original = batch.codes[i * 3 + 2];
    const taken = out.codes[i * 3 + 2];
    if (taken === original) continue;
    moved++;
    const candidates = [...batch.topCodes.subarray((i * 3 + 2) * 4, (i * 3 + 3) * 4)];
    const rank = candidates.indexOf(taken);
    assert.ok(rank > 0, `item ${i} took one of its candidates`);
    // every nearer alternative was full when tried, and counts only grow: it is full now
    for (const nearer of candidates.slice(1, rank)) {
      sid.set([out.codes[i * 3], out.codes[i * 3 + 1], nearer]);
      assert.ok(final.count(sid) >= cap, `item ${i}: nearer candidate ${nearer} had room`);
    }
  }
  assert.equal(moved, out.moved);
});

test('stability: resolving A then B against A equals resolving A+B at once; A keeps its SIDs', () => {
  const all = crowded(2000, 3, 16, 6, 25, 11);
  const strategy: CollisionStrategy = { kind: 'cap', cap: 5 };
  const split = 1200;
  const part = (from: number, to: number) => ({
    codes: all.codes.slice(from * 3, to * 3),
    topCodes: all.topCodes.slice(from * 3 * 6, to * 3 * 6),
    topDistances: all.topDistances.slice(from * 3 * 6, to * 3 * 6),
    n: to - from,
    levels: 3,
  });
  const occupancy = new MapOccupancy(3);
  const a = resolveCollisions(strategy, part(0, split), occupancy);
  occupancy.addRows(a.codes, split);
  const aSnapshot = a.codes.slice();
  const b = resolveCollisions(strategy, part(split, 2000), occupancy);
  occupancy.addRows(b.codes, 2000 - split);
  assert.deepEqual(a.codes, aSnapshot);

  const once = resolveCollisions(strategy, all, new MapOccupancy(3));
  assert.deepEqual(once.codes.subarray(0, split * 3), a.codes);
  assert.deepEqual(once.codes.subarray(split * 3), b.codes);
  assert.equal(once.moved, a.moved + b.moved);
  assert.equal(once.unresolved, a.unresolved + b.unresolved);
  // the cap held across both batches (every excess is an unresolved item)
  let excess = 0;
  for (const c of occupancy.counts()) excess += Math.max(0, c - 5);
  assert.equal(excess, a.unresolved + b.unresolved);
});

test('suffix: one more level with ranks 0..m−1 per SID, continuing from the occupancy; no collisions', () => {
  const codes = Int32Array.from([3, 1, 3, 1, 0, 2, 3, 1, 0, 2]);
  const out = resolveCollisions({ kind: 'suffix' }, { codes, n: 5, levels: 2 }, empty);
  assert.deepEqual([...out.codes], [3, 1, 0, 3, 1, 1, 0, 2, 0, 3, 1, 2, 0, 2, 1]);
  assert.equal(countsOf(out.codes, 5, 3).size, 5);

  // a second batch continues the ranks where the first stopped
  const occupancy = new MapOccupancy(2);
  occupancy.addRows(out.codes, 5, 3);
  const next = resolveCollisions({ kind: 'suffix' }, { codes: Int32Array.from([3, 1, 9, 9]), n: 2, levels: 2 }, occupancy);
  assert.deepEqual([...next.codes], [3, 1, 3, 9, 9, 0]);

  const big = crowded(3000, 3, 8, 1, 4, 5);
  const suffixed = resolveCollisions({ kind: 'suffix' }, big, empty);
  assert.equal(countsOf(suffixed.codes, big.n, 4).size, big.n);
  const perSid = countsOf(big.codes, big.n, 3);
  for (let i = 0; i < big.n; i++) {
    assert.ok(suffixed.codes[i * 4 + 3] < perSid.count(big.codes, i * 3));
  }
});

test('rejects bad batches and strategies with the offending field', () => {
  const field = (name: string) => (err: unknown) => {
    assert.ok(err instanceof SidxError && err.code === 'SIDX_ERR_INVALID_INPUT');
    assert.equal(err.field, name);
    return true;
  };
  const codes = Int32Array.from([0, 0, 0, 0]);
  assert.throws(() => resolveCollisions({ kind: 'cap', cap: 0 }, { codes, n: 2, levels: 2 }, empty), field('strategy.cap'));
  assert.throws(() => resolveCollisions({ kind: 'none' }, { codes, n: 3, levels: 2 }, empty), field('codes'));
  assert.throws(() => resolveCollisions({ kind: 'none' }, { codes: Int32Array.from([0, -1]), n: 1, levels: 2 }, empty), field('codes[1]'));
  assert.throws(
    () => resolveCollisions({ kind: 'cap', cap: 1 }, { codes, topCodes: new Int32Array(5), n: 2, levels: 2 }, empty),
    field('topCodes'),
  );
  assert.throws(
    () =>
      resolveCollisions(
        { kind: 'cap', cap: 1 },
        { codes, topCodes: new Int32Array(8), topDistances: Float32Array.from([0, 0, 0.5, 0.2, 0, 0, 0, 0]), n: 2, levels: 2 },
        empty,
      ),
    field('topDistances[3]'),
  );
  assert.throws(() => resolveCollisions({ kind: 'bogus' } as never, { codes, n: 2, levels: 2 }, empty), field('strategy.kind'));
  assert.throws(() => new MapOccupancy(2).count(Int32Array.from([1, 2, 3])), field('sid'));
});
