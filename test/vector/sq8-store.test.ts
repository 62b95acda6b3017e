/**
 * The sq8 rerank storage (src/vector/sq8-store.ts, native/src/sq8_codes.cc) on a real slot file: the codes round
 * trip within half a step; before training every candidate is scored exactly; after it the top `rescore` get exact
 * scores read back from the slot file; recall@10 against the float32 ranking on the scientific text embeddings and
 * a synthetic clustered catalog; a restart loads the codes; a torn or foreign codes file is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../../src/io/npy.ts';
import { clusteredEmbeddings } from '../../src/eval/synthetic.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { Sq8Store, bestPositions } from '../../src/vector/sq8-store.ts';
import { belowExact } from '../../src/vector/code-ranking.ts';
import type { Metric } from '../../src/vector/vector-index.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';
import { metricScore, randomMatrix } from '../helpers/random.ts';
import { fill, openCodeStore, trainAndRestart, recallVsF32 as recallAgainstF32, type OpenCodes } from '../helpers/code-stores.ts';
import { seededUniform } from '../../src/random.ts';

const open: OpenCodes<Sq8Store> = (base, slots, metric, opts) => Sq8Store.open(base, slots, metric, opts);
const openStore = (dir: string, dim: number, metric: Metric, rescore: number, trainSize: number) => openCodeStore(open, dir, dim, metric, rescore, trainSize);
const recallVsF32 = (data: Float32Array, dim: number, metric: Metric, queries: Float32Array, rescore: number) =>
  recallAgainstF32(open, data, dim, metric, queries, rescore);

test('codes round trip: each value within half a step of its decoding, clamped outside the range; scores match the decoding', () => {
  const dim = 40;
  const data = randomMatrix(50, dim, 3);
  const vmin = new Float32Array(dim).fill(-2);
  const step = new Float32Array(dim).fill(4 / 255);
  step[7] = 0; // a constant dimension decodes to vmin
  const codes = new (loadFaissBinding().Sq8Codes)(dim, 'l2', vmin, step);
  try {
    const encoded = codes.encode(data);
    const decoded = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const d = i % dim;
      decoded[i] = vmin[d]! + encoded[i]! * step[d]!;
      const clamped = Math.min(2, Math.max(-2, data[i]!));
      if (d !== 7) assert.ok(Math.abs(decoded[i]! - clamped) <= step[d]! / 2 + 1e-6, `value ${data[i]} decoded as ${decoded[i]}`);
    }
    assert.ok(encoded.some((c) => c === 255) && encoded.some((c) => c === 0), 'values past the range clamp to its ends');
    const slots = Int32Array.from({ length: 50 }, (_, i) => 70_000 + 3 * i); // a second 64 Ki-slot block, gaps
    codes.put(slots, encoded);
    const query = randomMatrix(1, dim, 4);
    const got = codes.score(query, Int32Array.of(slots[5]!, -1, 5, slots[9]!));
    assert.ok(Number.isNaN(got[1]!) && Number.isNaN(got[2]!), 'a negative or never-written slot scores NaN');
    for (const [j, row] of [[0, 5], [3, 9]] as const) {
      const want = metricScore('l2', query, decoded.subarray(row * dim, (row + 1) * dim));
      assert.ok(Math.abs(got[j]! - want) < 1e-4 * Math.max(1, Math.abs(want)), `row ${row}: ${got[j]} vs ${want}`);
    }
  } finally {
    codes.close();
  }
});

test('encode rounds half to even and clamps, in order, whatever the row length (the SIMD body and its tail)', () => {
  for (const dim of [8, 32, 40, 96]) {
    const rows = 3;
    const values = Float32Array.from({ length: rows * dim }, (_, i) => (i % 7 === 0 ? -3 : i % 11 === 0 ? 300 : (i * 37) % 256) + (i % 2 ? 0.5 : 0.25));
    const codes = new (loadFaissBinding().Sq8Codes)(dim, 'l2', new Float32Array(dim), new Float32Array(dim).fill(1));
    try {
      const got = codes.encode(values);
      const want = Uint8Array.from(values, (v) => {
        const r = Math.floor(v);
        const q = v - r > 0.5 || (v - r === 0.5 && r % 2 !== 0) ? r + 1 : r; // half to even
        return Math.min(255, Math.max(0, q));
      });
      assert.deepEqual(got, want, `dim ${dim}`);
    } finally {
      codes.close();
    }
  }
});

test('inner-product code scores (the query as int16) match the decoded vectors\' scores, at any scale and length', () => {
  const { Sq8Codes } = loadFaissBinding();
  for (const dim of [7, 45, 512, 3000]) { // a tail only, tails after blocks of 32, and more than one int32 block
    const data = randomMatrix(60, dim, dim);
    const vmin = new Float32Array(dim).fill(-3);
    const step = Float32Array.from({ length: dim }, (_, d) => (d % 5 === 0 ? 0 : 6 / 255));
    const codes = new Sq8Codes(dim, 'ip', vmin, step);
    try {
      const c = codes.encode(data);
      const slots = Int32Array.from({ length: 60 }, (_, i) => i);
      codes.put(slots, c);
      for (const scale of [1e-6, 1, 1e6]) {
        const query = randomMatrix(1, dim, 99).map((x) => x * scale);
        const got = codes.score(query, slots);
        let bound = 0;
        for (let d = 0; d < dim; d++) bound += Math.abs(query[d]! * step[d]!) * 255;
        for (let r = 0; r < 60; r++) {
          let want = 0;
          for (let d = 0; d < dim; d++) want += query[d]! * (vmin[d]! + step[d]! * c[r * dim + d]!);
          assert.ok(Math.abs(got[r]! - want) <= 1e-4 * bound, `dim ${dim} scale ${scale} row ${r}: ${got[r]} vs ${want}`);
        }
      }
    } finally {
      codes.close();
    }
  }
});

test('scoreSubset scores at least exactTop of the best exactly, more than rescore when asked', () => {
  const dim = 24;
  const tmp = tempDir();
  const { put, store, close } = openStore(tmp.dir, dim, 'ip', 2, 200); // every row in the ranges: none clamped
  try {
    const data = randomMatrix(200, dim, 5);
    const ids = fill(put, data, dim);
    const query = randomMatrix(1, dim, 6);
    const exact = (p: number) => { let s = 0; for (let d = 0; d < dim; d++) s += query[d]! * data[p * dim + d]!; return s; };
    const exactCount = (scores: Float32Array) => Array.from(scores).filter((v, p) => Math.abs(v - exact(p)) <= 1e-5).length;
    const rank = (scores: Float32Array) => Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]!);
    for (const top of [0, 7]) {
      const scores = store.scoreSubset(query, ids, top);
      const best = rank(scores).slice(0, Math.max(2, top));
      for (const p of best) assert.ok(Math.abs(scores[p]! - exact(p)) <= 1e-5, `top ${top}: position ${p} scored exactly`);
      assert.ok(exactCount(scores) < 50, 'the rest keep code scores');
    }
  } finally {
    close();
    tmp.cleanup();
  }
});

test('bestPositions keeps the best finite scores by the metric\'s sign', () => {
  const s = Float32Array.of(0.5, Number.NaN, 0.9, 0.1, 0.9, 0.7);
  const best = (count: number, sign: 1 | -1) => Array.from(bestPositions(s, count, sign)).sort((a, b) => a - b);
  assert.deepEqual(best(2, 1), [2, 4]);
  assert.deepEqual(best(3, 1), [2, 4, 5]);
  assert.deepEqual(best(2, -1), [0, 3]);
  assert.deepEqual(best(1, 1).length, 1, 'a tie at the cut fills only the places left');
  assert.deepEqual(best(9, 1), [0, 2, 3, 4, 5]);
});

test('bestPositions selects what a full sort would, ties at the cut in position order', () => {
  const next = seededUniform(7);
  for (let round = 0; round < 200; round++) {
    const n = 1 + Math.floor(next() * 300);
    // Few distinct values, so that ties at the cut are common; some NaN and infinities left out.
    const s = Float32Array.from({ length: n }, () => (next() < 0.05 ? [Number.NaN, Infinity, -Infinity][Math.floor(next() * 3)]! : Math.floor(next() * 20) / 4));
    const count = Math.floor(next() * (n + 5));
    for (const sign of [1, -1] as const) {
      const finite = Array.from(s.keys()).filter((i) => Number.isFinite(s[i]!));
      const sorted = [...finite].sort((a, b) => sign * (s[b]! - s[a]!) || a - b);
      const take = Math.min(count, finite.length);
      const cut = take === 0 ? undefined : sorted[take - 1]!;
      const want = finite.length <= count ? finite : cut === undefined ? [] : [
        ...finite.filter((i) => sign * s[i]! > sign * s[cut]!),
        ...finite.filter((i) => s[i] === s[cut]),
      ].slice(0, take);
      assert.deepEqual(Array.from(bestPositions(s, count, sign)), want, `round ${round} sign ${sign}`);
    }
  }
});

test('untrained: exact scores; trained: the top rescore exact from the slot file, the rest from the codes; restart loads the codes', async () => {
  const dim = 32;
  await trainAndRestart(open, { dim, data: randomMatrix(300, dim, 11), before: 150, trainSize: 300, bound: 0.05 * Math.sqrt(dim), file: 'vectors.sq8' });
});

test('a torn or foreign codes file is refused at load (the owner rebuilds)', () => {
  const dim = 16;
  const tmp = tempDir();
  try {
    let { put, store, close } = openStore(tmp.dir, dim, 'l2', 4, 10);
    fill(put, randomMatrix(40, dim, 2), dim, 20);
    close();
    const path = join(tmp.dir, 'vectors.sq8');
    const version = (v: number) => { const fd = openSync(path, 'r+'); writeSync(fd, Uint32Array.of(v), 0, 4, 12); closeSync(fd); };
    version(0); // a file written before stop 50: its ranges have no margin, so its extremes would read as clamped
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 10));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /format version 0, this store uses 1/.test(err.message));
    close();
    version(1);
    truncateSync(path, statSync(path).size - 1);
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 10));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /slots need/.test(err.message));
    close();
    writeFileSync(path, Buffer.alloc(9000, 7));
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 10));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /not a 16-d/.test(err.message));
    close();
  } finally {
    tmp.cleanup();
  }
});

test('recall@10 against float32 loses at most 0.01: synthetic clustered catalog, ip and l2', async () => {
  const dim = 64;
  const data = clusteredEmbeddings({ n: 3000, dim, seed: 5, clusters: 30, noise: 0.5 });
  const queries = clusteredEmbeddings({ n: 100, dim, seed: 6, clusters: 30, noise: 0.5 });
  for (const metric of ['ip', 'l2'] as const) {
    const recall = await recallVsF32(data, dim, metric, queries, 50);
    assert.ok(recall >= 0.99, `${metric}: recall@10 ${recall}`);
  }
});

test('recall@10 against float32 loses at most 0.01 on the scientific text embeddings (1,585 x 512)',
  { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
    const { data, shape } = await readNpy(sharedFile('scientific', 'text_emb.npy'));
    const dim = shape[1]!;
    const queries = data.slice(0, 200 * dim).map((x, i) => x + 0.01 * Math.sin(i)); // near, not equal to, items
    const recall = await recallVsF32(data, dim, 'ip', queries, 50);
    assert.ok(recall >= 0.99, `recall@10 ${recall}`);
  });

test('the raw Sq8Codes: scoreAsync equals score, with the exact re-score from a SlotMap; a close in flight keeps the codes', async () => {
  const dim = 16;
  const tmp = tempDir();
  try {
    const { Sq8Codes, SlotMap } = loadFaissBinding();
    const data = randomMatrix(3000, dim, 41);
    const file = join(tmp.dir, 'v.f32');
    writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const codes = new Sq8Codes(dim, 'ip', new Float32Array(dim).fill(-6), new Float32Array(dim).fill(12 / 255)); // none clamped
    const slots = Int32Array.from({ length: 3000 }, (_, i) => 2999 - i);
    codes.put(slots, codes.encode(Float32Array.from({ length: 3000 * dim }, (_, i) => data[(2999 - Math.floor(i / dim)) * dim + (i % dim)]!)));
    const map = new SlotMap(file, dim, 'ip');
    const query = randomMatrix(1, dim, 42);
    const asked = Int32Array.from([...slots, -1]);
    const want = codes.score(query, asked);
    const best = bestPositions(want, 40, 1).sort(); // the same set; scoreAsync lists it ascending
    const exact = map.scoreSlots(query, Int32Array.from(best, (p) => asked[p]!));
    const withExact = want.slice();
    best.forEach((p, i) => { withExact[p] = exact[i]!; });
    assert.deepEqual(await codes.scoreAsync!(query, asked, map, 40), { scores: withExact, exact: best });
    const inFlight = Array.from({ length: 8 }, () => codes.scoreAsync!(query, asked));
    const rescoring = codes.scoreAsync!(query, asked, map, 40);
    codes.close();
    map.close();
    for (const p of inFlight) assert.deepEqual(await p, want);
    assert.deepEqual(await rescoring, { scores: withExact, exact: best });
    await assert.rejects(codes.scoreAsync!(query, asked), { code: 'SIDX_ERR_VECTOR' });
    const short = join(tmp.dir, 'short.sq8');
    writeFileSync(short, new Uint8Array(4096 + 10 * dim));
    const reader = new Sq8Codes(dim, 'ip', new Float32Array(dim), new Float32Array(dim).fill(1));
    const fd = openSync(short, 'r');
    try {
      await reader.readFromAsync(fd, 4096, 10);
      await assert.rejects(reader.readFromAsync(fd, 4096, 11), { code: 'SIDX_ERR_VECTOR', message: /ended before its last slot/ });
    } finally {
      closeSync(fd);
      reader.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('a restart reads the codes in the background: exact scores until then, codes written meanwhile kept', async () => {
  const dim = 32;
  const tmp = tempDir();
  const data = randomMatrix(700, dim, 51);
  let current = openStore(tmp.dir, dim, 'ip', 5, 300);
  try {
    const ids = fill(current.put, data.subarray(0, 600 * dim), dim);
    current.close();
    current = openStore(tmp.dir, dim, 'ip', 5, 300);
    current.store.load();
    const query = randomMatrix(1, dim, 52);
    const exact = (i: number) => metricScore('ip', query, data.subarray(i * dim, (i + 1) * dim));
    const loading = current.store.scoreSubset(query, ids);
    for (let i = 0; i < 600; i++) assert.ok(Math.abs(loading[i]! - exact(i)) < 1e-5, `id ${i + 1} scored exactly while the codes are read`);
    const more = BigInt64Array.from({ length: 100 }, (_, i) => BigInt(601 + i));
    current.put(more, data.subarray(600 * dim)); // codes written while the read is in flight
    await current.store.codesLoaded();
    const all = BigInt64Array.from([...ids, ...more]);
    const live = current.store.scoreSubset(query, all);
    current.close();
    current = openStore(tmp.dir, dim, 'ip', 5, 300);
    current.store.load();
    await current.store.codesLoaded();
    const restarted = current.store.scoreSubset(query, all);
    assert.deepEqual(live, restarted, 'the codes put during the read are in memory as in the file');
    current.close();
    mkdirSync(join(tmp.dir, 'fresh'));
    current = openStore(join(tmp.dir, 'fresh'), dim, 'ip', 5, 300);
    fill(current.put, data, dim);
    assert.deepEqual(restarted, current.store.scoreSubset(query, all), 'the same codes as a store that held every row from the start');
  } finally {
    current.close();
    tmp.cleanup();
  }
});

test('the raw Sq8Codes: a pool thread resolves the rows while the JS thread adds blocks, up to the last int32 slot', async () => {
  const dim = 64;
  const { Sq8Codes } = loadFaissBinding();
  const codes = new Sq8Codes(dim, 'l2', new Float32Array(dim).fill(-4), new Float32Array(dim).fill(8 / 255), false);
  try {
    const data = randomMatrix(2000, dim, 71);
    const slots = Int32Array.from({ length: 2000 }, (_, i) => i);
    codes.put(slots, codes.encode(data));
    const query = randomMatrix(1, dim, 72);
    const want = codes.score(query, slots);
    const row = codes.encode(randomMatrix(1, dim, 73));
    for (let i = 1; i <= 40; i++) {
      const pending = codes.scoreAsync!(query, slots);
      codes.put(Int32Array.of(i * 65_536 + 5), row); // a new 64 Ki-slot block while the score runs
      assert.deepEqual(await pending, want, `round ${i}`);
    }
    const last = 2 ** 31 - 1;
    codes.put(Int32Array.of(last), row);
    const far = Int32Array.of(last, 40 * 65_536 + 5, 41 * 65_536, 7);
    const got = await codes.scoreAsync!(query, far);
    assert.deepEqual(got, codes.score(query, far));
    assert.equal(got[0], got[1], 'the same codes at the last int32 slot');
    assert.ok(Number.isNaN(got[2]!), 'a block never written holds no codes');
    assert.equal(got[3], want[7]);
  } finally {
    codes.close();
  }
});

test('the raw Sq8Codes: scoreAsync keeps its exact re-scores above every code score, as belowExact does on the sync path', async () => {
  // Coarse codes (5 levels per dimension, none clamped): many code scores beat the worst exact one, so they all move below it.
  const dim = 16;
  const tmp = tempDir();
  try {
    const { Sq8Codes, SlotMap } = loadFaissBinding();
    const data = randomMatrix(2000, dim, 51);
    const file = join(tmp.dir, 'v.f32');
    writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    for (const metric of ['ip', 'l2'] as const) {
      const sign = metric === 'ip' ? 1 : -1;
      const codes = new Sq8Codes(dim, metric, new Float32Array(dim).fill(-7.5), new Float32Array(dim).fill(1.5));
      const slots = Int32Array.from({ length: 2000 }, (_, i) => i);
      codes.put(slots, codes.encode(data));
      const map = new SlotMap(file, dim, metric);
      const query = randomMatrix(1, dim, 52);
      const asked = Int32Array.from([...slots, -1]);
      const coded = codes.score(query, asked);
      const best = bestPositions(coded, 30, sign).sort();
      const exact = map.scoreSlots(query, Int32Array.from(best, (p) => asked[p]!));
      const want = coded.slice();
      best.forEach((p, i) => { want[p] = exact[i]!; });
      const worst = Math.min(...Array.from(best, (p) => sign * want[p]!));
      assert.ok(Array.from(want).some((v, i) => !best.includes(i) && sign * v > worst), `${metric}: a code score beats the worst exact one`);
      belowExact(want, best, sign);
      assert.deepEqual(await codes.scoreAsync!(query, asked, map, 30), { scores: want, exact: best }, metric);
      codes.close();
      map.close();
    }
  } finally {
    tmp.cleanup();
  }
});
