/**
 * sq8's clamped rows (src/vector/sq8-store.ts, native/src/sq8_codes.cc): a value beyond the quantiser's widened ranges
 * is stored as code 0 or 255 and its row is always re-scored exactly, so an item far outside the first items' ranges
 * (a drifted catalog, a much larger norm) keeps its place in the top k; the ranges' margin keeps the training rows
 * themselves unclamped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { RANGE_MARGIN, Sq8Store, bestPositions, codeOf, fitRange } from '../../src/vector/sq8-store.ts';
import { VectorIndex, type Metric } from '../../src/vector/vector-index.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { fill, openCodeStore, topK } from '../helpers/code-stores.ts';
import { recallAtK } from '../../src/bench/baselines.ts';
import { withExact } from '../../src/vector/code-ranking.ts';
import { rankByScore } from '../../src/service/score-rank.ts';

const openStore = (dir: string, dim: number, metric: Metric, rescore: number, trainSize: number) =>
  openCodeStore((base, slots, m, opts) => Sq8Store.open(base, slots, m, opts), dir, dim, metric, rescore, trainSize);

test('the raw Sq8Codes: rows holding a clamped code (0 or 255) are re-scored exactly beside the best rescore, from put and from a read file', async () => {
  const dim = 16;
  const n = 500;
  const tmp = tempDir();
  try {
    const { Sq8Codes, SlotMap } = loadFaissBinding();
    const data = randomMatrix(n, dim, 61);
    for (const d of [0, 5]) data[(n - 3) * dim + d] = 40; // two rows beyond the ranges' top, one below their bottom
    data[(n - 2) * dim + 9] = 25;
    data[(n - 1) * dim + 3] = -30;
    const file = join(tmp.dir, 'v.f32');
    writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const map = new SlotMap(file, dim, 'ip');
    const codes = new Sq8Codes(dim, 'ip', new Float32Array(dim).fill(-6), new Float32Array(dim).fill(12 / 255));
    const slots = Int32Array.from({ length: n }, (_, i) => i);
    const query = randomMatrix(1, dim, 62);
    const asked = Int32Array.from([...slots, -1]);
    const inRange = slots.subarray(0, n - 3);
    codes.put(inRange, codes.encode(data.subarray(0, (n - 3) * dim)));
    assert.deepEqual(codes.clampedAt!(asked), new Int32Array(0), 'no clamped code stored yet');
    const before = await codes.scoreAsync!(query, asked, map, 5);
    assert.deepEqual(before.exact, bestPositions(codes.score(query, asked), 5, 1).sort(), 'only the best 5 re-scored');

    const last3 = slots.subarray(n - 3);
    const encoded = codes.encode(data.subarray((n - 3) * dim));
    assert.deepEqual([encoded[0], encoded[5], encoded[dim + 9], encoded[2 * dim + 3]], [255, 255, 255, 0], 'clamped values take the reserved codes');
    assert.equal(codes.clampedStored, 0);
    codes.put(last3, encoded);
    assert.deepEqual(codes.clampedAt!(asked), Int32Array.of(n - 3, n - 2, n - 1));
    assert.equal(codes.clampedStored, 3);
    // The clamped rows' code scores replaced by exact ones first, then the best 5 of all re-scored exactly.
    const mixed = codes.score(query, asked);
    const clamped = Int32Array.of(n - 3, n - 2, n - 1);
    map.scoreSlots(query, clamped).forEach((s, i) => { mixed[clamped[i]!] = s; });
    const want = Int32Array.from(new Set([...bestPositions(mixed, 5, 1), ...clamped])).sort();
    const got = await codes.scoreAsync!(query, asked, map, 5);
    assert.deepEqual(got.exact, want, 'the clamped rows and the best 5 re-scored');
    const exact = map.scoreSlots(query, Int32Array.from(want, (p) => asked[p]!));
    want.forEach((p, i) => assert.equal(got.scores[p], exact[i], `position ${p} scored exactly`));
    assert.ok(clamped.some((p) => !bestPositions(mixed, 5, 1).includes(p)), 'a clamped row outside the best 5 is scored exactly too');

    const codesFile = join(tmp.dir, 'c.sq8');
    const all = new Uint8Array(4096 + n * dim); // a header's room, as vectors.sq8 has
    all.set(codes.encode(data), 4096);
    writeFileSync(codesFile, all);
    const reader = new Sq8Codes(dim, 'ip', new Float32Array(dim).fill(-6), new Float32Array(dim).fill(12 / 255));
    const fd = openSync(codesFile, 'r');
    try {
      await reader.readFromAsync(fd, 4096, n);
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(reader.clampedAt!(asked), Int32Array.of(n - 3, n - 2, n - 1), 'read from a file: the same rows');
    assert.equal(reader.clampedStored, 3);
    assert.deepEqual((await reader.scoreAsync!(query, asked, map, 5)).exact, want);
    reader.put(Int32Array.of(n - 2, 7), codes.encode(data.subarray(0, 2 * dim))); // a clamped row and an unclamped one overwritten, in range
    assert.equal(reader.clampedStored, 2, 'an overwritten clamped row no longer counts');
    assert.deepEqual(reader.clampedAt!(asked), Int32Array.of(n - 3, n - 1));
    reader.close();
    codes.close();
    map.close();
  } finally {
    tmp.cleanup();
  }
});

test('the raw Sq8Codes with many clamped rows: their exact scores stay unmoved, and the native ranking is code-ranking.ts withExact\'s, ip and l2', async () => {
  const dim = 16;
  const n = 400;
  const tmp = tempDir();
  try {
    const { Sq8Codes, SlotMap } = loadFaissBinding();
    const data = randomMatrix(n, dim, 67);
    const file = join(tmp.dir, 'v.f32');
    writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const slots = Int32Array.from({ length: n }, (_, i) => i);
    for (const metric of ['ip', 'l2'] as const) {
      const sign = metric === 'ip' ? 1 : -1;
      // Coarse ranges (codes 1-7 cover -1.5..1.5): most rows clamp somewhere, and many code scores beat the worst exact one.
      const codes = new Sq8Codes(dim, metric, new Float32Array(dim).fill(-2), new Float32Array(dim).fill(0.5));
      codes.put(slots, codes.encode(data));
      const map = new SlotMap(file, dim, metric);
      const clamped = codes.clampedAt!(slots);
      assert.ok(clamped.length > n / 2, `${clamped.length} clamped rows`);
      for (const seed of [68, 69, 70]) {
        const query = randomMatrix(1, dim, seed);
        const got = await codes.scoreAsync!(query, slots, map, 10, 10);
        const want = withExact(codes.score(query, slots), clamped, 10, sign, (positions) => map.scoreSlots(query, Int32Array.from(positions, (p) => slots[p]!)));
        assert.deepEqual(got.scores, want, `${metric}: the native ranking and the sync path's, bit for bit`);
        const exact = map.scoreSlots(query, clamped);
        clamped.forEach((p, i) => assert.equal(got.scores[p], exact[i], `${metric}: clamped position ${p} keeps its exact score`));
        assert.deepEqual(got.top, Int32Array.from([...rankByScore(want.slice(), sign, 10)].slice(0, 10)), `${metric}: top`);
      }
      codes.close();
      map.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('the raw Sq8Codes count by slot: rows never written are not uncounted, whatever order the slots are written in; release neutralises', () => {
  const dim = 8;
  const { Sq8Codes } = loadFaissBinding();
  const codes = new Sq8Codes(dim, 'ip', new Float32Array(dim).fill(-1), new Float32Array(dim).fill(2 / 255));
  try {
    const clampedRow = (i: number) => Uint8Array.from({ length: dim }, (_, d) => (d === i % dim ? 255 : 100));
    const rows = (n: number) => { const out = new Uint8Array(n * dim); for (let i = 0; i < n; i++) out.set(clampedRow(i), i * dim); return out; };
    codes.put(Int32Array.from({ length: 50 }, (_, i) => 100 + i), rows(50)); // a later batch committed first
    codes.put(Int32Array.from({ length: 50 }, (_, i) => i), rows(50)); // then the rows below it: zeros before, not codes
    assert.equal(codes.clampedStored, 100);
    codes.release!(Int32Array.of(3, 120, 77)); // 77 was never written: nothing to uncount
    assert.equal(codes.clampedStored, 98);
    const written = Int32Array.from([...Array.from({ length: 50 }, (_, i) => i), ...Array.from({ length: 50 }, (_, i) => 100 + i)]);
    assert.equal(codes.clampedAt!(written).length, 98, 'released rows hold neutral codes');
    codes.put(Int32Array.of(3, 60), rows(2)); // a released slot reused, a never-written one written
    assert.equal(codes.clampedStored, 100);
    assert.equal(codes.clampedAt!(Int32Array.from([...written, 60])).length, 100);
  } finally {
    codes.close();
  }
});

/** recall@10 against exact float32 of scoreSubset and rankSubsetAsync, and how many positions each query scored exactly. */
async function recallOf(data: Float32Array, dim: number, metric: Metric, trainSize: number, rescore: number, queries: Float32Array) {
  const tmp = tempDir();
  const { put, store, close } = openStore(tmp.dir, dim, metric, rescore, trainSize);
  const flat = VectorIndex.create({ dim, metric });
  try {
    const ids = fill(put, data, dim);
    flat.add(data, ids);
    assert.ok(store.trained);
    const q = queries.length / dim;
    const found = new BigInt64Array(q * 10);
    const foundAsync = new BigInt64Array(q * 10);
    const truth = new BigInt64Array(q * 10);
    let exactScored = 0;
    for (let i = 0; i < q; i++) {
      const query = queries.subarray(i * dim, (i + 1) * dim);
      const want = flat.scoreSubset(query, ids);
      const scores = store.scoreSubset(query, ids);
      exactScored += scores.reduce((c, s, p) => c + (s === want[p] ? 1 : 0), 0);
      found.set(topK(scores, ids, 10, metric), i * 10);
      const { top } = await store.rankSubsetAsync(query, ids, 10, 10);
      foundAsync.set(Array.from(top!, (p) => ids[p]!), i * 10);
      truth.set(topK(want, ids, 10, metric), i * 10);
    }
    return { recall: recallAtK(found, truth, q, 10), recallAsync: recallAtK(foundAsync, truth, q, 10), exactPerQuery: exactScored / q };
  } finally {
    flat.close();
    close();
    tmp.cleanup();
  }
}

test('a drifted catalog (items after the training set at 3x the scale): recall@10 stays exact, the clamped rows re-scored exactly', async () => {
  const dim = 32;
  const data = randomMatrix(3000, dim, 63);
  for (let i = 1000 * dim; i < data.length; i++) data[i]! *= 3;
  const queries = randomMatrix(20, dim, 64);
  for (const metric of ['ip', 'l2'] as const) {
    const { recall, recallAsync, exactPerQuery } = await recallOf(data, dim, metric, 1000, 20, queries);
    assert.equal(recall, 1, `${metric}: recall@10 ${recall}`);
    assert.equal(recallAsync, 1, `${metric}: off the event loop, recall@10 ${recallAsync}`);
    assert.ok(exactPerQuery > 1000, `${metric}: most of the drifted rows are clamped and scored exactly (${exactPerQuery} per query)`);
  }
});

test('the training rows are inside the widened ranges: only the best rescore are scored exactly', async () => {
  const dim = 32;
  const data = randomMatrix(1000, dim, 65);
  const queries = randomMatrix(10, dim, 66);
  const { exactPerQuery } = await recallOf(data, dim, 'ip', 1000, 10, queries);
  assert.ok(exactPerQuery >= 10 && exactPerQuery < 12, `${exactPerQuery} exact per query`);
});

test('fitRange: the sample\'s ends encode within 1..254 for narrow, constant, tiny and huge ranges; codeOf is the native encoder\'s code', () => {
  const { Sq8Codes } = loadFaissBinding();
  const ulpAbove = (x: number) => { const f = Float32Array.of(x); new Int32Array(f.buffer)[0]! += 1; return f[0]!; };
  const cases: Array<[number, number]> = [
    [-1.3, 2.7], [1, ulpAbove(1)], [1e6, ulpAbove(1e6)], [0, 1e-45], [0, 0], [-0, 0], [1e6, 1e6], [-1e30, -1e30],
    [1e-40, 1e-40], [-1e38, 1e38], [1e-3, 1e-3 + 1e-9], [-3e38, 3e38],
  ];
  for (const [lo, hi] of cases) {
    const [vmin, step] = fitRange(Math.fround(lo), Math.fround(hi), RANGE_MARGIN);
    assert.ok(Number.isFinite(vmin) && Number.isFinite(step) && step > 0, `[${lo}, ${hi}]: finite (${vmin}, ${step})`);
    const codes = new Sq8Codes(1, 'ip', Float32Array.of(vmin), Float32Array.of(step));
    const [cLo, cHi] = codes.encode(Float32Array.of(lo, hi));
    assert.equal(cLo, codeOf(Math.fround(lo), vmin, step), `[${lo}, ${hi}]: codeOf(lo) as the encoder`);
    assert.equal(cHi, codeOf(Math.fround(hi), vmin, step), `[${lo}, ${hi}]: codeOf(hi) as the encoder`);
    if (Math.abs(hi) <= 1e38 || lo === hi) assert.ok(cLo! >= 1 && cHi! <= 254, `[${lo}, ${hi}]: codes ${cLo}, ${cHi}`);
    codes.close();
  }
  const values = randomMatrix(1, 4096, 71, 3);
  const [vmin, step] = fitRange(-1, 1, RANGE_MARGIN);
  const codes = new Sq8Codes(4096, 'ip', new Float32Array(4096).fill(vmin), new Float32Array(4096).fill(step));
  const encoded = codes.encode(values);
  values.forEach((x, i) => assert.equal(encoded[i], codeOf(x, vmin, step), `value ${x}`));
  codes.close();
});

test('filling: writes of a whole catalog (a rebuild) train once at their end, on a sample spread over all of them; not after a failure', () => {
  const dim = 16;
  const data = randomMatrix(300, dim, 72);
  for (let i = 100 * dim; i < data.length; i++) data[i]! *= 5; // the items after the first 100 at 5x the scale
  const clampedAfter = (deferred: boolean) => {
    const tmp = tempDir();
    const { put, store, close } = openStore(tmp.dir, dim, 'ip', 5, 100);
    try {
      const write = () => fill(put, data, dim, 100);
      if (deferred) store.filling(write);
      else write();
      assert.ok(store.trained);
      return store.clampedRows()!;
    } finally {
      close();
      tmp.cleanup();
    }
  };
  const tmp = tempDir();
  const { put, store, close } = openStore(tmp.dir, dim, 'ip', 5, 100);
  try {
    assert.throws(() => store.filling(() => { fill(put, data.subarray(0, 150 * dim), dim, 50); throw new Error('disk full'); }), /disk full/);
    assert.equal(store.trained, false, 'a fill that failed leaves the training to the next start');
  } finally {
    close();
    tmp.cleanup();
  }
  const firstBatch = clampedAfter(false);
  const spread = clampedAfter(true);
  assert.ok(firstBatch > 150, `trained on the first batch: ${firstBatch} of 300 clamped`);
  assert.ok(spread < 30, `trained on a sample spread over the three batches: ${spread} of 300 clamped`);
});
