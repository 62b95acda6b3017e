/**
 * pq's flagged rows (src/vector/pq-store.ts, native/src/pq_codes.cc, native/src/flagged_codes.h): a row's last code
 * is 255 (reserved: no vector encodes to it) when the vector's squared residual (its distance to its decoding) is
 * above the holder's limit; pqTrain's heldOut (the rows it holds out of the k-means, every tenth, from 512 rows on)
 * sets that limit (residualLimit);
 * every rerank re-scores the flagged rows exactly beside the best `rescore`, so an outlier the codebooks do not reach
 * keeps its place in the top k; the count by slot follows puts, overwrites, releases and a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recallAtK } from '../../src/bench/baselines.ts';
import { clusteredEmbeddings } from '../../src/eval/synthetic.ts';
import { rankByScore } from '../../src/service/score-rank.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { bestPositions, withExact } from '../../src/vector/code-ranking.ts';
import { PQ_RESCORE, PqStore, RESIDUAL_MARGIN, RESIDUAL_QUANTILE, residualLimit } from '../../src/vector/pq-store.ts';
import { VectorIndex, type Metric } from '../../src/vector/vector-index.ts';
import { fill, openCodeStore, pqFlaggedCount, storedPq, topK } from '../helpers/code-stores.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const openStore = (dir: string, dim: number, metric: Metric, rescore: number, trainSize: number) =>
  openCodeStore((base, slots, m, opts) => PqStore.open(base, slots, m, { ...opts, pqM: 0 }), dir, dim, metric, rescore, trainSize);

/**
 * Each row's squared residual under `centroids` (FAISS's layout: m x 256 x dim / m): the float32 sum, in order, of the
 * squared differences between the vector and its codes' centroids, as the native encoder sums it. `encoded`: rows of m
 * codes, none flagged (a flagged row's last code is 255, the reserved one).
 */
function residuals(vectors: Float32Array, encoded: Uint8Array, centroids: Float32Array, dim: number, m: number): number[] {
  const sub = dim / m;
  const rows = encoded.length / m;
  const f = Math.fround;
  return Array.from({ length: rows }, (_, r) => {
    let sum = 0;
    for (let j = 0; j < m; j++) {
      const c = (j * 256 + encoded[r * m + j]!) * sub;
      for (let t = 0; t < sub; t++) {
        const d = f(vectors[r * dim + j * sub + t]! - centroids[c + t]!);
        sum = f(sum + f(d * d));
      }
    }
    return sum;
  });
}

/** Each row's flag: 1 where its last code is 255 (reserved for it: native/src/pq_codes.h). */
const flagsOf = (encoded: Uint8Array, m: number) => Array.from({ length: encoded.length / m }, (_, r) => (encoded[r * m + m - 1] === 255 ? 1 : 0));
/** The codes but each row's last (which a flag replaces). */
const codesOf = (encoded: Uint8Array, m: number) => encoded.filter((_, i) => i % m !== m - 1);

test('the raw PqCodes: encode flags exactly the rows whose squared residual is above the limit; none without one; FAISS\'s reference codes and encodeAsync give the same bytes', async () => {
  const { PqCodes, pqTrain } = loadFaissBinding();
  const dim = 16;
  const m = 4;
  const n = 1000;
  const data = randomMatrix(n, dim, 81);
  for (let r = 0; r < n; r += 25) for (let d = 0; d < dim; d++) data[r * dim + d]! *= 3; // 40 rows at 3x the scale
  const { centroids } = pqTrain(data.subarray(0, 600 * dim), dim, m, { niter: 5, seed: 3 });
  const plain = new PqCodes(dim, 'ip', m, centroids);
  const unflagged = plain.encode(data);
  plain.close();
  assert.ok(flagsOf(unflagged, m).every((f) => f === 0), 'no limit given: no row flagged');
  const res = residuals(data, unflagged, centroids, dim, m);
  const sorted = [...res].sort((a, b) => a - b);
  const limits: Array<[string, number]> = [
    ['between the median and the next', (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2],
    ['between the 96th percentile and the next', (sorted[959]! + sorted[960]!) / 2],
    ['a row\'s own residual (not above it: unflagged)', sorted[900]!],
    ['0', 0],
    ['Infinity', Infinity],
  ];
  for (const metric of ['ip', 'l2'] as const) {
    for (const [what, asked] of limits) {
      const codes = new PqCodes(dim, metric, m, centroids, false, asked);
      const limit = Math.fround(asked); // the holder keeps a float
      try {
        const encoded = codes.encode(data);
        const flags = flagsOf(encoded, m);
        res.forEach((r, i) => assert.equal(flags[i], r > limit ? 1 : 0, `${metric}, limit ${what}: row ${i} (residual ${r}, limit ${limit})`));
        assert.equal(flags.filter((f) => f === 1).length, res.filter((r) => r > limit).length);
        assert.deepEqual(codesOf(encoded, m), codesOf(unflagged, m), `${metric}, limit ${what}: the codes do not depend on the limit`);
        flags.forEach((flag, i) => flag === 0 && assert.equal(encoded[i * m + m - 1], unflagged[i * m + m - 1], `${metric}, limit ${what}: row ${i}'s last code kept`));
        assert.deepEqual(codes.encode(data, true), encoded, `${metric}, limit ${what}: FAISS's reference codes, flags included`);
        assert.deepEqual(await codes.encodeAsync!(data), encoded, `${metric}, limit ${what}: encodeAsync's bytes`);
      } finally {
        codes.close();
      }
    }
  }
  // The reserved code: the holder copies centroid 254 of the last sub-quantizer over 255, so a vector exactly at 254
  // (then at 255 too: a tie) takes 254 in both encoders, and one exactly where a given codebook put 255 takes another.
  const sub = dim / m;
  const at = (c: Float32Array, code: number) => c.subarray(((m - 1) * 256 + code) * sub, ((m - 1) * 256 + code + 1) * sub);
  const own255 = centroids.slice();
  at(own255, 255).fill(7); // far from every other centroid
  const tie = data.slice(0, 2 * dim);
  tie.set(at(centroids, 254), (m - 1) * sub);
  tie.set(at(own255, 255), dim + (m - 1) * sub);
  const tied = new PqCodes(dim, 'l2', m, own255);
  for (const reference of [false, true]) {
    const codes = tied.encode(tie, reference);
    assert.equal(codes[m - 1], 254, `at centroid 254, reference ${reference}: code 254`);
    assert.notEqual(codes[2 * m - 1], 255, `at the given codebook's centroid 255, reference ${reference}: not 255 (reserved)`);
  }
  tied.close();
  const median = new PqCodes(dim, 'ip', m, centroids, false, limits[0]![1]);
  const medianFlags = flagsOf(median.encode(data), m);
  median.close();
  assert.ok(Math.abs(medianFlags.filter((f) => f === 1).length - n / 2) < 5, 'about half the rows above the median');
  assert.ok([...Array(16).keys()].every((i) => medianFlags[600 + 25 * i] === 1), 'the rows at 3x the scale after the training rows are flagged');
  assert.throws(() => new PqCodes(dim, 'ip', m, centroids, false, NaN), /limit must be a number/);
});

test('pqTrain: heldOut holds the squared residuals of the held-out rows (every tenth, left out of the k-means); none below 512 rows; deterministic; one stray row does not lift the limit', async () => {
  const { PqCodes, pqTrain, pqTrainAsync } = loadFaissBinding();
  const dim = 16;
  const m = 4;
  const data = clusteredEmbeddings({ n: 1000, dim, seed: 83, clusters: 12, noise: 0.5 });
  const heldOutOf = (sample: Float32Array, centroids: Float32Array) => {
    const codes = new PqCodes(dim, 'l2', m, centroids);
    const res = residuals(sample, codes.encode(sample), centroids, dim, m);
    codes.close();
    return { held: Float32Array.from(res.filter((_, r) => r % 10 === 9)), fitted: res.filter((_, r) => r % 10 !== 9), res };
  };
  const opts = { niter: 6, seed: 5 };
  const trained = pqTrain(data, dim, m, opts);
  const { held, fitted } = heldOutOf(data, trained.centroids);
  assert.deepEqual(trained.heldOut, held, 'the held-out rows\' residuals, in sample order');
  assert.notEqual(Math.max(...held), Math.max(...fitted), 'not the training rows\'');
  assert.deepEqual(pqTrain(data, dim, m, opts), trained, 'deterministic');
  assert.deepEqual(await pqTrainAsync(data, dim, m, opts), trained, 'pqTrainAsync: pqTrain\'s result');
  const reference = pqTrain(data, dim, m, { ...opts, reference: true });
  assert.deepEqual(reference.heldOut, heldOutOf(data, reference.centroids).held, 'FAISS\'s k-means (reference): the same measure');
  const sorted = Float32Array.from(held).sort();
  assert.equal(residualLimit(trained.heldOut), sorted[Math.floor(RESIDUAL_QUANTILE * 99)]! * (1 + RESIDUAL_MARGIN) ** 2, 'the limit: their quantile, widened');

  // A held-out row scaled far out: the codebooks are unchanged (it is not in the k-means), and the limit stays within
  // the other held-out rows' largest (widened): the quantile leaves the stray row out.
  const outlier = data.slice();
  for (let d = 0; d < dim; d++) outlier[9 * dim + d]! *= 10;
  const withOutlier = pqTrain(outlier, dim, m, opts);
  assert.deepEqual(withOutlier.centroids, trained.centroids, 'a held-out row does not move the codebooks');
  assert.equal(withOutlier.heldOut[0], heldOutOf(outlier, trained.centroids).res[9], 'row 9 is the first held out');
  assert.ok(withOutlier.heldOut[0]! > 10 * sorted.at(-1)!, 'far above the others');
  const limit = residualLimit(withOutlier.heldOut);
  assert.ok(limit <= sorted.at(-1)! * (1 + RESIDUAL_MARGIN) ** 2, `limit ${limit}: not lifted by the stray row (${withOutlier.heldOut[0]})`);
  const fittedOutlier = data.slice();
  for (let d = 0; d < dim; d++) fittedOutlier[8 * dim + d]! *= 10;
  assert.notDeepEqual(pqTrain(fittedOutlier, dim, m, opts).centroids, trained.centroids, 'a training row does move them');

  const small = pqTrain(data.subarray(0, 511 * dim), dim, m, opts);
  assert.equal(small.heldOut.length, 0, 'below 512 rows: none held out');
  assert.equal(residualLimit(small.heldOut), Infinity, 'so no limit');
  const codes = new PqCodes(dim, 'ip', m, small.centroids, false, residualLimit(small.heldOut));
  assert.ok(flagsOf(codes.encode(outlier), m).every((f) => f === 0), 'an infinite limit flags nothing, not even the outlier');
  codes.close();
  const at512 = pqTrain(data.subarray(0, 512 * dim), dim, m, opts);
  assert.equal(at512.heldOut.length, 51);
  assert.deepEqual(at512.heldOut, heldOutOf(data.subarray(0, 512 * dim), at512.centroids).held, 'from 512 rows: measured on the 51 held out');
});

/** A drifted catalog on a raw PqCodes and SlotMap: `n` rows of dim 16, every 50th from row 1000 on at 3x the scale. */
function driftedRows(tmpDir: string, n: number) {
  const dim = 16;
  const m = 8;
  const data = randomMatrix(n, dim, 85);
  const scaled = Array.from({ length: (n - 1000) / 50 }, (_, i) => 1000 + 50 * i);
  for (const r of scaled) for (let d = 0; d < dim; d++) data[r * dim + d]! *= 3;
  const file = join(tmpDir, 'v.f32');
  writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const trained = loadFaissBinding().pqTrain(data.subarray(0, 1000 * dim), dim, m, { niter: 6, seed: 7 });
  return { dim, m, data, file, scaled, trained };
}

test('the raw PqCodes: rankKeys and rankKeysAsync re-score the flagged rows exactly even outside the best rescore, their exact scores unmoved; bit for bit code-ranking.ts withExact, with few or many rows flagged, ip and l2', async () => {
  const n = 3000;
  const rescore = 20;
  const tmp = tempDir();
  try {
    const { PqCodes, SlotMap } = loadFaissBinding();
    const { dim, m, data, file, scaled, trained } = driftedRows(tmp.dir, n);
    const slots = Int32Array.from({ length: n }, (_, i) => i);
    const asked = Int32Array.from([...slots, -1]); // key n has no slot
    const keys = BigInt64Array.from({ length: n + 1 }, (_, i) => BigInt(i));
    const dense = Int32Array.from({ length: n }, (_, i) => i + 1); // key k in slot k
    const plain = new PqCodes(dim, 'ip', m, trained.centroids);
    const sortedRes = residuals(data, plain.encode(data), trained.centroids, dim, m).sort((a, b) => a - b);
    plain.close();
    const cases = [['outliers', residualLimit(trained.heldOut)], ['half the rows', sortedRes[n / 2]!]] as const;
    for (const metric of ['ip', 'l2'] as const) {
      const sign = metric === 'ip' ? 1 : -1;
      const map = new SlotMap(file, dim, metric);
      for (const [what, limit] of cases) {
        const codes = new PqCodes(dim, metric, m, trained.centroids, false, limit);
        const label = `${metric}, ${what}`;
        try {
          const encoded = codes.encode(data);
          codes.put(slots, encoded);
          const flagged = codes.clampedAt(asked);
          assert.deepEqual([...flagged], flagsOf(encoded, m).flatMap((f, i) => (f === 1 ? [i] : [])), `${label}: clampedAt, the rows flagged`);
          assert.equal(codes.clampedStored, flagged.length);
          if (what === 'outliers') {
            assert.ok(scaled.every((r) => flagged.includes(r)) && flagged.length < scaled.length + 30, `${label}: ${flagged.length} flagged, the ${scaled.length} at 3x among them`);
          } else {
            assert.equal(flagged.length, sortedRes.filter((r) => r > limit).length, `${label}: the rows above the median residual`);
            assert.ok(flagged.length > 0.45 * n, `${label}: ${flagged.length} flagged`);
          }
          let outside = 0;
          let shifted = 0;
          for (const seed of [86, 87, 88]) {
            const query = randomMatrix(1, dim, seed);
            const codeScores = codes.score(query, asked);
            const exactOf = (positions: Int32Array) => map.scoreSlots(query, Int32Array.from(positions, (p) => asked[p]!));
            const want = withExact(codeScores.slice(), flagged, rescore, sign, exactOf);
            const got = codes.rankKeys!(query, keys, dense, n + 1, n, map, rescore, 10, true);
            assert.deepEqual(got.scores, want, `${label}: the native ranking is the sync path's, bit for bit`);
            assert.ok(Number.isNaN(got.scores[n]!));
            const flaggedExact = exactOf(flagged);
            flagged.forEach((p, i) => assert.equal(got.scores[p], flaggedExact[i], `${label}: flagged position ${p} keeps its exact score`));
            const mixed = codeScores.slice();
            flagged.forEach((p, i) => { mixed[p] = flaggedExact[i]!; });
            const best = bestPositions(mixed, rescore, sign);
            assert.deepEqual(got.exact, Int32Array.from(new Set([...best, ...flagged])).sort(), `${label}: the flagged rows and the best ${rescore} scored exactly`);
            outside += flagged.filter((p) => !best.includes(p)).length;
            shifted += got.scores.filter((s, p) => !got.exact.includes(p) && s !== codeScores[p]).length;
            assert.deepEqual(got.top, Int32Array.from([...rankByScore(want.slice(), sign, 10)].slice(0, 10)), `${label}: top`);
            assert.deepEqual(codes.rankKeys!(query, keys, dense, n + 1, n, map, rescore, 10, false), got, `${label}: through the mapping`);
            assert.deepEqual(await codes.rankKeysAsync!(query, keys, dense, n + 1, n, map, rescore, 10, true), got, `${label}: rankKeysAsync`);
          }
          assert.ok(outside > 0, `${label}: flagged rows outside the best ${rescore} are scored exactly too (${outside})`);
          if (what !== 'outliers') assert.ok(shifted > 0, `${label}: the code scores moved below the exact ones, the flagged rows did not`);
        } finally {
          codes.close();
        }
      }
      map.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('the raw PqCodes count by slot: puts in any order, a flagged row overwritten by an unflagged one, release of freed and never-written slots', () => {
  const { PqCodes } = loadFaissBinding();
  const tmp = tempDir();
  try {
    const { dim, m, data, scaled, trained } = driftedRows(tmp.dir, 2000);
    const codes = new PqCodes(dim, 'ip', m, trained.centroids, false, residualLimit(trained.heldOut));
    const far = codes.encode(Float32Array.from(scaled.slice(0, 10).flatMap((r) => [...data.subarray(r * dim, (r + 1) * dim)])));
    const near = codes.encode(data.subarray(0, 10 * dim));
    assert.deepEqual(flagsOf(far, m), Array(10).fill(1));
    assert.deepEqual(flagsOf(near, m), Array(10).fill(0));
    const range = (from: number, count: number) => Int32Array.from({ length: count }, (_, i) => from + i);
    codes.put(range(100, 10), far); // a later batch committed first
    codes.put(range(0, 10), far); // then the rows below it: zeros before, not codes
    codes.put(range(20, 10), near);
    assert.equal(codes.clampedStored, 20);
    codes.put(Int32Array.of(3, 104), near.subarray(0, 2 * m)); // two flagged rows overwritten by unflagged ones
    assert.equal(codes.clampedStored, 18);
    codes.put(Int32Array.of(21), far.subarray(0, m)); // an unflagged row overwritten by a flagged one
    assert.equal(codes.clampedStored, 19);
    codes.release(Int32Array.of(5, 105, 22, 21, 60)); // 60 was never written: nothing to uncount
    assert.equal(codes.clampedStored, 16);
    codes.release(Int32Array.of(5));
    assert.equal(codes.clampedStored, 16, 'a released slot is neutral: releasing it again uncounts nothing');
    const written = Int32Array.from([...range(0, 10), ...range(20, 10), ...range(100, 10)]);
    assert.deepEqual([...codes.clampedAt(written)], [0, 1, 2, 4, 6, 7, 8, 9, 20, 21, 22, 23, 26, 27, 28, 29], 'positions of the flagged rows');
    codes.put(Int32Array.of(5, 60), far.subarray(0, 2 * m)); // a released slot reused, a never-written one written
    assert.equal(codes.clampedStored, 18);
    codes.close();
  } finally {
    tmp.cleanup();
  }
});

/** Live ids whose current vectors the quantiser in vectors.pq flags: what the count must say. */
const flaggedTruth = (dir: string, dim: number, live: Map<number, Float32Array>) => pqFlaggedCount(join(dir, 'vectors.pq'), dim, live.values());

test('PqStore: the flagged count is the live items\' through deletes, moves and a restart that reads the codes file back; flagged rows score exactly', async () => {
  const dim = 16;
  const n = 1000;
  const data = randomMatrix(n + 40, dim, 89);
  for (let r = 600; r < n + 40; r += 10) for (let d = 0; d < dim; d++) data[r * dim + d]! *= 3; // after the training items, 1 in 10 at 3x
  const tmp = tempDir();
  const live = new Map<number, Float32Array>();
  const row = (r: number) => data.subarray(r * dim, (r + 1) * dim);
  try {
    let { put, slots, store, close } = openStore(tmp.dir, dim, 'ip', 5, 600);
    fill(put, data.subarray(0, n * dim), dim, 100);
    for (let id = 1; id <= n; id++) live.set(id, row(id - 1));
    assert.equal(await store.training(), true);
    const count = () => store.clampedRows();
    const drifted = count();
    assert.equal(drifted, flaggedTruth(tmp.dir, dim, live));
    assert.ok(drifted >= 40 && drifted < 60, `the 40 items at 3x flagged, few others (${drifted})`);

    const gone = BigInt64Array.of(601n, 611n, 621n, 5n); // three flagged items and one other deleted
    const freed = slots.slotsOf(gone);
    slots.remove(gone);
    store.releaseSlots(freed);
    for (const id of gone) live.delete(Number(id));
    assert.equal(count(), flaggedTruth(tmp.dir, dim, live), 'after the deletes');
    assert.equal(count(), drifted - 3);

    const move = (ids: number[], rows: number[]) => {
      const keys = BigInt64Array.from(ids, BigInt);
      const before = slots.slotsOf(keys);
      put(keys, Float32Array.from(rows.flatMap((r) => [...row(r)])));
      store.releaseSlots(before.filter((s, i) => s !== slots.slotsOf(keys)[i]));
      ids.forEach((id, i) => live.set(id, row(rows[i]!)));
    };
    move([631, 641], [0, 1]); // flagged items re-upserted with unflagged vectors, into new rows
    move([10, 20, 30], [n, n + 10, n + 20]); // unflagged items re-upserted with vectors at 3x
    assert.equal(count(), flaggedTruth(tmp.dir, dim, live), 'after the moves');
    assert.equal(count(), drifted - 3 - 2 + 3);
    const afterMoves = count();
    const query = randomMatrix(1, dim, 90);
    const ids = BigInt64Array.from(live.keys(), BigInt);
    const scores = store.scoreSubset(query, ids);
    await store.datasync();
    close();

    ({ store, close } = openStore(tmp.dir, dim, 'ip', 5, 600));
    store.load();
    await store.codesLoaded();
    assert.equal(count(), afterMoves, 'read back: the freed rows do not count');
    assert.equal(count(), flaggedTruth(tmp.dir, dim, live));
    assert.deepEqual(store.scoreSubset(query, ids), scores, 'the same scores after the restart');
    const flat = VectorIndex.create({ dim, metric: 'ip' });
    flat.add(Float32Array.from([...live.values()].flatMap((v) => [...v])), ids);
    const exact = flat.scoreSubset(query, ids);
    const holder = storedPq(join(tmp.dir, 'vectors.pq'), dim, 'ip');
    const flaggedAt = [...live.values()].flatMap((v, p) => (holder.encode(v)[dim / 2 - 1] === 255 ? [p] : []));
    holder.close();
    assert.equal(flaggedAt.length, afterMoves);
    for (const p of flaggedAt) assert.equal(scores[p], exact[p], `flagged id ${ids[p]} scored exactly`);
    const best = bestPositions(scores, 5, 1);
    assert.ok(flaggedAt.filter((p) => !best.includes(p)).length > 30, 'most of them outside the best 5');
    assert.deepEqual(store.rankSubset(query, ids, 0, 10).scores, scores, 'rankSubset: scoreSubset\'s scores, bit for bit');
    assert.deepEqual((await store.rankSubsetAsync(query, ids, 0, 10)).scores, scores, 'rankSubsetAsync: the same');
    flat.close();
    close();
  } finally {
    tmp.cleanup();
  }
});

/**
 * recall@10 against exact float32 of scoreSubset and rankSubsetAsync (default rescore, trained on the first 1000
 * items), the flagged share, and whether rankSubset and rankSubsetAsync gave scoreSubset's scores bit for bit.
 */
async function recallOf(data: Float32Array, dim: number, metric: Metric, queries: Float32Array) {
  const tmp = tempDir();
  const { put, store, close } = openStore(tmp.dir, dim, metric, 0, 1000);
  const flat = VectorIndex.create({ dim, metric });
  try {
    assert.equal(store.rescore, PQ_RESCORE);
    const ids = fill(put, data, dim);
    flat.add(data, ids);
    assert.equal(await store.training(), true);
    const q = queries.length / dim;
    const found = new BigInt64Array(q * 10);
    const foundAsync = new BigInt64Array(q * 10);
    const truth = new BigInt64Array(q * 10);
    let same = true;
    for (let i = 0; i < q; i++) {
      const query = queries.subarray(i * dim, (i + 1) * dim);
      const scores = store.scoreSubset(query, ids);
      found.set(topK(scores, ids, 10, metric), i * 10);
      const ranked = await store.rankSubsetAsync(query, ids, 10, 10);
      foundAsync.set(Array.from(ranked.top!, (p) => ids[p]!), i * 10);
      same &&= ranked.scores.every((s, p) => Object.is(s, scores[p])) && store.rankSubset(query, ids, 0, 10).scores.every((s, p) => Object.is(s, scores[p]));
      truth.set(topK(flat.scoreSubset(query, ids), ids, 10, metric), i * 10);
    }
    return { recall: recallAtK(found, truth, q, 10), recallAsync: recallAtK(foundAsync, truth, q, 10), flagged: store.clampedRows() / ids.length, same };
  } finally {
    flat.close();
    close();
    tmp.cleanup();
  }
}

test('a drifted catalog (1% of the items after the first 2,000 at 3x the norm): recall@10 is exact at the default rescore, ip and l2', async (t) => {
  const dim = 32;
  const n = 20_000;
  const data = randomMatrix(n, dim, 91);
  for (let r = 2000 + 99; r < n; r += 100) for (let d = 0; d < dim; d++) data[r * dim + d]! *= 3;
  const queries = randomMatrix(30, dim, 92);
  for (const metric of ['ip', 'l2'] as const) {
    const { recall, recallAsync, flagged, same } = await recallOf(data, dim, metric, queries);
    t.diagnostic(`${metric}: recall@10 ${recall} (rankSubsetAsync ${recallAsync}), ${(100 * flagged).toFixed(2)}% flagged`);
    assert.equal(recall, 1, `${metric}: recall@10 ${recall}`);
    assert.equal(recallAsync, 1, `${metric}: off the event loop, recall@10 ${recallAsync}`);
    assert.ok(flagged >= 0.009 && flagged < 0.03, `${metric}: the 180 items at 3x flagged, few others (${flagged})`);
    assert.ok(same, `${metric}: rankSubset and rankSubsetAsync give scoreSubset's scores bit for bit`);
  }
});

test('an undrifted catalog (clustered, trained on 1,000 of 5,000): few rows flagged', async (t) => {
  const dim = 32;
  const data = clusteredEmbeddings({ n: 5000, dim, seed: 93, noise: 0.5 });
  const queries = clusteredEmbeddings({ n: 10, dim, seed: 94, noise: 0.5 });
  const { recall, flagged } = await recallOf(data, dim, 'ip', queries);
  t.diagnostic(`undrifted: ${(100 * flagged).toFixed(2)}% flagged, recall@10 ${recall}`);
  assert.ok(flagged < 0.05, `${(100 * flagged).toFixed(2)}% flagged`);
});
