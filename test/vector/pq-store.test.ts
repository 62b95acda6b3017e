/**
 * The pq rerank storage (src/vector/pq-store.ts, native/src/pq_codes.cc) on a real slot file: the asymmetric scores
 * are the metric against the decoded codes (FAISS's centroids, row-major by sub-quantizer); training is
 * deterministic and needs 256 rows; before training every candidate is scored exactly, after it the top `rescore`
 * get exact scores read back from the slot file; a restart loads the codes; a torn, foreign or other-m file is
 * refused; recall@10 against the float32 ranking on a synthetic clustered catalog and the scientific text
 * embeddings; vectors.pqM must divide the dimension; training runs in the background (code-training.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../../src/io/npy.ts';
import { SidxError } from '../../src/errors.ts';
import { clusteredEmbeddings, seededGaussian } from '../../src/eval/synthetic.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { PQ_RESCORE, PqStore, pqSubquantizers } from '../../src/vector/pq-store.ts';
import { VectorIndex, type Metric } from '../../src/vector/vector-index.ts';
import { checkCodeScores, fill, openCodeStore, trainAndRestart, recallVsF32, storedPq, type OpenCodes } from '../helpers/code-stores.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';
import { metricScore, randomMatrix } from '../helpers/random.ts';

/** The rescore the recall tests hold to: pq's default (config vectors.rescore 0). */
const RESCORE = PQ_RESCORE;

const openWith = (pqM: number): OpenCodes<PqStore> => (base, slots, metric, opts) => PqStore.open(base, slots, metric, { ...opts, pqM });
const openStore = (dir: string, dim: number, metric: Metric, rescore: number, trainSize: number, pqM = 0) =>
  openCodeStore(openWith(pqM), dir, dim, metric, rescore, trainSize);

/** The vectors `encoded` stands for: each code's centroid (FAISS's layout: m x 256 x dim / m). */
function decodePq(encoded: Uint8Array, centroids: Float32Array, dim: number, m: number): Float32Array {
  const sub = dim / m;
  const rows = encoded.length / m;
  const decoded = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < m; j++) {
      const c = encoded[r * m + j]!;
      decoded.set(centroids.subarray((j * 256 + c) * sub, (j * 256 + c + 1) * sub), r * dim + j * sub);
    }
  }
  return decoded;
}

test('codes: scores are the metric against the decoded centroids; training is deterministic and needs 256 rows', () => {
  const { PqCodes, pqTrain } = loadFaissBinding();
  const dim = 24;
  const m = 6;
  const data = clusteredEmbeddings({ n: 600, dim, seed: 3, clusters: 10, noise: 0.5 });
  const trained = pqTrain(data, dim, m, { niter: 5, seed: 7 });
  const { centroids } = trained;
  assert.equal(centroids.length, 256 * dim);
  assert.deepEqual(pqTrain(data, dim, m, { niter: 5, seed: 7 }), trained, 'the same sample and seed give the same codebooks');
  assert.throws(() => pqTrain(data.subarray(0, 255 * dim), dim, m), (e: Error & { code?: string }) => e.code === 'SIDX_ERR_INVALID_INPUT' && /256/.test(e.message));
  assert.throws(() => new PqCodes(dim, 'ip', 5, null), /must divide dim/);
  for (const metric of ['ip', 'l2'] as const) {
    const codes = new PqCodes(dim, metric, m, centroids);
    try {
      const encoded = codes.encode(data.subarray(0, 50 * dim));
      assert.equal(encoded.length, 50 * m);
      assert.ok(encoded.every((c, i) => i % m !== m - 1 || c !== 255), 'no limit given: no row flagged (the last code 255 reserved for it)');
      const decoded = decodePq(encoded, centroids, dim, m);
      let err = 0;
      for (let i = 0; i < decoded.length; i++) err = Math.max(err, Math.abs(decoded[i]! - data[i]!));
      assert.ok(err < 1, `${metric}: decoded vectors near their originals (max error ${err})`);
      const slots = Int32Array.from({ length: 50 }, (_, i) => 70_000 + 3 * i); // a second 64 Ki-slot block, gaps
      codes.put(slots, encoded);
      const query = randomMatrix(1, dim, 4);
      const got = codes.score(query, Int32Array.of(slots[5]!, -1, 5, slots[9]!));
      assert.ok(Number.isNaN(got[1]!) && Number.isNaN(got[2]!), `${metric}: a negative or never-written slot scores NaN`);
      for (const [j, row] of [[0, 5], [3, 9]] as const) {
        const want = metricScore(metric, query, decoded.subarray(row * dim, (row + 1) * dim));
        assert.ok(Math.abs(got[j]! - want) < 1e-4 * Math.max(1, Math.abs(want)), `${metric} row ${row}: ${got[j]} vs ${want}`);
      }
    } finally {
      codes.close();
    }
  }
  const untrained = new PqCodes(dim, 'ip', m, null);
  assert.throws(() => untrained.encode(data.subarray(0, dim)), /not trained/);
  untrained.close();
});

test('training: the k-means with the fast assignment quantises as well as with FAISS\'s IndexFlatL2', () => {
  const { PqCodes, pqTrain } = loadFaissBinding();
  const dim = 64;
  const m = 32;
  const data = clusteredEmbeddings({ n: 3000, dim, seed: 9, clusters: 40, noise: 0.6 });
  const error = (centroids: Float32Array) => {
    const codes = new PqCodes(dim, 'l2', m, centroids);
    const decoded = decodePq(codes.encode(data, true), centroids, dim, m);
    codes.close();
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += (data[i]! - decoded[i]!) ** 2;
    return sum / 3000;
  };
  const fast = error(pqTrain(data, dim, m, { niter: 8, seed: 5 }).centroids);
  const faiss = error(pqTrain(data, dim, m, { niter: 8, seed: 5, reference: true }).centroids);
  assert.ok(fast <= faiss * 1.02, `mean squared quantisation error ${fast} against FAISS's ${faiss}`);
});

test('codes: the fast encoder gives FAISS\'s codes, bit for bit, for every sub-quantizer width', () => {
  const { PqCodes, pqTrain } = loadFaissBinding();
  for (const [dim, m] of [[512, 256], [48, 16], [24, 8], [40, 4]] as const) {
    const data = clusteredEmbeddings({ n: 1500, dim, seed: dim, clusters: 12, noise: 0.5 });
    const codes = new PqCodes(dim, 'l2', m, pqTrain(data.subarray(0, 600 * dim), dim, m, { niter: 4, seed: 3 }).centroids);
    try {
      const fast = codes.encode(data);
      const faiss = codes.encode(data, true);
      let differ = 0;
      for (let i = 0; i < fast.length; i++) if (fast[i] !== faiss[i]) differ++;
      assert.equal(differ, 0, `${dim}-d, m ${m}: ${differ} of ${fast.length} codes differ from ProductQuantizer::compute_codes`);
      // An all-zero row, about as far from many centroids: FAISS's (first) choice too.
      const tie = new Float32Array(dim).fill(0);
      assert.deepEqual(codes.encode(tie), codes.encode(tie, true));
    } finally {
      codes.close();
    }
  }
});

test('codes: the fast query table gives FAISS\'s scores, bit for bit, for every sub-quantizer width and both metrics', () => {
  const { PqCodes, pqTrain } = loadFaissBinding();
  for (const [dim, m] of [[512, 256], [512, 16], [48, 16], [24, 8], [40, 4]] as const) {
    const data = clusteredEmbeddings({ n: 1200, dim, seed: dim + m, clusters: 12, noise: 0.5 });
    const { centroids } = pqTrain(data.subarray(0, 600 * dim), dim, m, { niter: 4, seed: 3 });
    for (const metric of ['ip', 'l2'] as const) {
      const codes = new PqCodes(dim, metric, m, centroids);
      try {
        const slots = Int32Array.from({ length: 1200 }, (_, i) => i);
        codes.put(slots, codes.encode(data));
        for (let q = 0; q < 3; q++) {
          const query = randomMatrix(1, dim, 100 + q);
          const fast = codes.score(query, slots);
          const faiss = codes.score(query, slots, true);
          const differ = fast.filter((x, i) => x !== faiss[i]).length;
          assert.equal(differ, 0, `${dim}-d, m ${m}, ${metric}: ${differ} of ${fast.length} scores differ from FAISS's table`);
        }
      } finally {
        codes.close();
      }
    }
  }
});

test('vectors.pqM: 0 picks dim / 2 (or the next coarser divisor); one that does not divide dim is a config error', () => {
  assert.equal(pqSubquantizers(512, 0), 256);
  assert.equal(pqSubquantizers(24, 0), 12);
  assert.equal(pqSubquantizers(21, 0), 7);
  assert.equal(pqSubquantizers(5, 0), 1);
  assert.equal(pqSubquantizers(512, 32), 32);
  assert.throws(() => pqSubquantizers(512, 48),
    (e: unknown) => e instanceof SidxError && e.code === 'SIDX_ERR_CONFIG' && e.field === 'vectors.pqM' && /48 does not divide the model's dimension 512/.test(e.message));
});

test('untrained: exact scores (256 rows at least); trained: the top rescore exact, the rest from the codes; restart loads the codes', async () => {
  const dim = 32;
  await trainAndRestart(openWith(0), {
    dim,
    data: clusteredEmbeddings({ n: 400, dim, seed: 11, clusters: 8, noise: 0.5 }),
    before: 250, // trainSize 100 is raised to 256: one row per centroid
    trainSize: 100,
    bound: 0.5 * Math.sqrt(dim),
    file: 'vectors.pq',
    trainedBytes: Math.ceil((16 + 1024 * dim + 4) / 4096) * 4096 + 400 * 16, // the codebooks and limit, then m = dim / 2 = 16 bytes per slot
    opened: (store) => {
      assert.equal(store.trainCount, 256);
      assert.equal(store.codeSize, 16);
    },
  });
});

test('a torn, foreign or other-m codes file is refused at load (the owner rebuilds)', async () => {
  const dim = 16;
  const tmp = tempDir();
  try {
    let { put, store, close } = openStore(tmp.dir, dim, 'l2', 4, 256);
    fill(put, randomMatrix(300, dim, 2), dim, 100);
    await store.training();
    assert.equal(store.trained, true);
    close();
    const path = join(tmp.dir, 'vectors.pq');
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 256, 4));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /sub-quantizers 8, this store uses 4/.test(err.message));
    close();
    // Files of the earlier formats: before the outlier flags (SIDXPQ8), and stop 51's interim layout with a flag byte
    // after each row's codes (SIDXPQ2, longer than this layout needs: it must not be read misaligned): refused, so the
    // owner rebuilds them.
    const current = readFileSync(path);
    for (const [magic, what] of [['SIDXPQ8', /earlier format \(no outlier flags\)/], ['SIDXPQ2', /earlier format \(a flag byte after each row's codes\)/]] as const) {
      const former = Buffer.concat([current, Buffer.alloc(300)]); // SIDXPQ2: m + 1 bytes per slot
      former.write(`${magic}\n`, 0, 'latin1');
      writeFileSync(path, former);
      ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 256));
      assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && what.test(err.message), magic);
      close();
      assert.equal(statSync(path).size, former.length, `${magic}: refused before any truncation`);
    }
    writeFileSync(path, current);
    truncateSync(path, statSync(path).size - 1);
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 256));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /slots need/.test(err.message));
    close();
    writeFileSync(path, Buffer.alloc(30_000, 7));
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 256));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /not a 16-d/.test(err.message));
    close();
    // Training cut short after the codes and codebooks, before the magic: refused as foreign.
    writeFileSync(path, Buffer.alloc(5 * 4096 + 300 * 2));
    ({ store, close } = openStore(tmp.dir, dim, 'l2', 4, 256));
    assert.throws(() => store.load(), (err: Error & { code?: string }) => err.code === 'SIDX_ERR_STORE' && /not a 16-d/.test(err.message));
    close();
  } finally {
    tmp.cleanup();
  }
});

test(`recall@10 against float32 loses at most 0.01 at rescore ${RESCORE}: synthetic clustered catalog, ip and l2`, async () => {
  // Queries near the catalog's clusters (its centres, as bench/vector-quant.bench.ts draws them). Queries from
  // other centres, far from every item, leave all candidates nearly tied: measured 0.86 (ip) and 0.81 (l2) at rescore 100.
  const dim = 64;
  const gauss = seededGaussian(4);
  const centres = Float32Array.from({ length: 30 * dim }, gauss);
  const data = clusteredEmbeddings({ n: 3000, dim, seed: 5, centres, noise: 0.5 });
  const queries = clusteredEmbeddings({ n: 100, dim, seed: 6, centres, noise: 0.5 });
  for (const metric of ['ip', 'l2'] as const) {
    const recall = await recallVsF32(openWith(0), data, dim, metric, queries, RESCORE);
    assert.ok(recall >= 0.99, `${metric}: recall@10 ${recall}`);
    // The re-score carries it: the codes alone (rescore 1) lose more, so this test can fail.
    const codesOnly = await recallVsF32(openWith(0), data, dim, metric, queries, 1);
    assert.ok(codesOnly < recall, `${metric}: codes-only recall@10 ${codesOnly} below the re-scored ${recall}`);
  }
});

test(`recall@10 against float32 loses at most 0.01 at rescore ${RESCORE} on the scientific text embeddings (1,585 x 512)`,
  { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
    const { data, shape } = await readNpy(sharedFile('scientific', 'text_emb.npy'));
    const dim = shape[1]!;
    const queries = data.slice(0, 200 * dim).map((x, i) => x + 0.01 * Math.sin(i)); // near, not equal to, items
    const recall = await recallVsF32(openWith(0), data, dim, 'ip', queries, RESCORE);
    assert.ok(recall >= 0.99, `recall@10 ${recall}`);
  });

test('training runs on the libuv pool: writes return at once and are scored exactly until it ends; a reset or close meanwhile drops it', async () => {
  const dim = 32;
  const data = clusteredEmbeddings({ n: 900, dim, seed: 12, clusters: 8, noise: 0.5 });
  const query = Float32Array.from({ length: dim }, (_, i) => Math.cos(2 * i));
  const tmp = tempDir();
  const flat = VectorIndex.create({ dim, metric: 'ip' });
  try {
    let { put, store, close } = openStore(tmp.dir, dim, 'ip', 5, 256);
    const ids = fill(put, data.subarray(0, 300 * dim), dim, 100);
    flat.add(data.subarray(0, 300 * dim), ids);
    const first = store.training();
    assert.ok(first, 'the write that completed the sample started a background training');
    assert.equal(store.trained, false);
    assert.deepEqual(store.scoreSubset(query, ids), flat.scoreSubset(query, ids), 'exact scores while it trains');
    store.reset();
    assert.equal(await first, false, 'a reset drops it');
    assert.equal(store.trained, false);
    assert.equal(statSync(join(tmp.dir, 'vectors.pq')).size, 0, 'and it wrote nothing');

    fill(put, data.subarray(0, 300 * dim), dim, 100);
    const second = store.training();
    assert.ok(second && second !== first, 'enough rows after the reset train again');
    close();
    assert.equal(await second, false, 'a close drops it');

    const fresh = join(tmp.dir, 'fresh');
    mkdirSync(fresh);
    ({ put, store, close } = openStore(fresh, dim, 'ip', 5, 256));
    fill(put, data.subarray(0, 300 * dim), dim, 100);
    const more = BigInt64Array.from({ length: 600 }, (_, i) => BigInt(301 + i));
    put(more, data.subarray(300 * dim)); // while it trains: held, and encoded once the quantiser is in
    flat.add(data.subarray(300 * dim), more);
    assert.equal(await store.training(), true);
    assert.equal(store.trained, true);
    assert.equal(store.training(), null);
    assert.equal(statSync(join(fresh, 'vectors.pq')).size, Math.ceil((16 + 1024 * dim + 4) / 4096) * 4096 + 900 * 16, 'the header, then the codes of every slot');
    const all = BigInt64Array.from({ length: 902 }, (_, i) => BigInt(i)); // 0 and 901: not stored
    const reference = storedPq(join(fresh, 'vectors.pq'), dim, 'ip');
    reference.put(Int32Array.from({ length: 900 }, (_, i) => i + 1), reference.encode(data));
    checkCodeScores(store.scoreSubset(query, all), flat.scoreSubset(query, all), reference.score(query, Int32Array.from(all, Number)), 5);
    reference.close();
    close();
  } finally {
    flat.close();
    tmp.cleanup();
  }
});

test('the raw PqCodes: rankKeysAsync re-scores by pread what the mapping holds, as rankKeys does; a close of the codes and the slot map in flight keeps both', async () => {
  const dim = 16;
  const n = 3000;
  const tmp = tempDir();
  try {
    const { PqCodes, SlotMap, pqTrain } = loadFaissBinding();
    const data = randomMatrix(n, dim, 43);
    const file = join(tmp.dir, 'v.f32');
    writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const codes = new PqCodes(dim, 'ip', 8, pqTrain(data, dim, 8).centroids);
    codes.put(Int32Array.from({ length: n }, (_, i) => i), codes.encode(data));
    const map = new SlotMap(file, dim, 'ip');
    const keys = BigInt64Array.from({ length: n + 1 }, (_, i) => BigInt(i)); // key n has no slot
    const dense = Int32Array.from({ length: n }, (_, i) => i + 1); // key k in slot k
    const query = randomMatrix(1, dim, 44);
    const rank = (read: boolean) => codes.rankKeys!(query, keys, dense, n + 1, n, map, 40, 10, read);
    const want = rank(true);
    assert.deepEqual(want, rank(false), 'pread and the mapping give the same rows');
    const exact = map.scoreSlots(query, want.exact);
    want.exact.forEach((p, i) => assert.equal(want.scores[p], exact[i], `position ${p}: re-scored exactly`));
    assert.equal(want.exact.length, 40);
    assert.ok(Number.isNaN(want.scores[n]!));
    const codeScores = codes.score(query, Int32Array.from({ length: n }, (_, i) => i));
    assert.ok(codeScores.some((x, i) => x !== want.scores[i]), 'the others keep code scores');
    assert.deepEqual(await codes.rankKeysAsync!(query, keys, dense, n + 1, n, map, 40, 10, true), want);
    const inFlight = Array.from({ length: 8 }, () => codes.rankKeysAsync!(query, keys, dense, n + 1, n, map, 40, 10, true));
    codes.close();
    map.close();
    for (const p of inFlight) assert.deepEqual(await p, want);
    await assert.rejects(async () => codes.rankKeysAsync!(query, keys, dense, n + 1, n, map, 40, 10, true), { code: 'SIDX_ERR_VECTOR' });
  } finally {
    tmp.cleanup();
  }
});

test('prepare: codes encoded on the libuv pool, bit for bit encode\'s; add writes them while their quantiser is in use, encodes again after a retraining', async () => {
  const dim = 16;
  const m = dim / 2;
  const tmp = tempDir();
  try {
    const { put, store, close } = openStore(tmp.dir, dim, 'ip', 4, 256);
    const path = join(tmp.dir, 'vectors.pq');
    const header = Math.ceil((16 + 1024 * dim + 4) / 4096) * 4096;
    const codesAt = (first: number, count: number) => readFileSync(path).subarray(header + first * m, header + (first + count) * m);
    const data = randomMatrix(700, dim, 91);
    assert.equal(store.prepare(data.subarray(0, 10 * dim)), null, 'nothing to encode with before training');
    fill(put, data.subarray(0, 300 * dim), dim, 100); // slots 0..299
    await store.training();
    const a = data.subarray(300 * dim, 400 * dim);
    const b = data.subarray(400 * dim, 500 * dim);
    const preparedB = await store.prepare(b)!;
    const reference = storedPq(path, dim, 'ip');
    assert.deepEqual(preparedB.codes, reference.encode(b), 'encodeAsync gives encode\'s codes');
    assert.notDeepEqual(reference.encode(a), preparedB.codes);
    put(BigInt64Array.from({ length: 100 }, (_, i) => BigInt(1001 + i)), a, preparedB); // slots 300..399, with b's codes
    assert.deepEqual(new Uint8Array(codesAt(300, 100)), preparedB.codes, 'add wrote the prepared codes, not its own encode');
    reference.close();

    store.reset(); // a new quantiser: codes prepared with the old one are stale
    fill(put, data.subarray(400 * dim, 700 * dim), dim, 100);
    await store.training();
    const stale = BigInt64Array.from({ length: 100 }, (_, i) => BigInt(2001 + i));
    put(stale, a, preparedB); // slots 700..799 (the row writer appends)
    const retrained = storedPq(path, dim, 'ip');
    assert.deepEqual(new Uint8Array(codesAt(700, 100)), retrained.encode(a), 'stale prepared codes are encoded again');
    retrained.close();
    close();
  } finally {
    tmp.cleanup();
  }
});
