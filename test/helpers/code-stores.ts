/**
 * Shared by the tests of the compressed rerank storages (test/vector/sq8-store.test.ts, pq-store.test.ts): a code
 * store over a vector file written the way the catalog writes it, filling it in batches, and recall@10 of its
 * ranking against exact float32 (FAISS flat).
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { recallAtK } from '../../src/bench/baselines.ts';
import { rankByScore } from '../../src/service/score-rank.ts';
import type { CodeOptions, CodeStore } from '../../src/vector/code-store.ts';
import { loadFaissBinding, type NativeCodes } from '../../src/vector/binding.ts';
import { SlotFile } from '../../src/vector/slot-file.ts';
import { VectorIndex, type Metric } from '../../src/vector/vector-index.ts';
import type { PreparedVectors } from '../../src/vector/vector-store.ts';
import { tempDir } from './paths.ts';
import { RowWriter } from './rows.ts';

export type OpenCodes<S extends CodeStore> = (base: string, slots: SlotFile, metric: Metric, opts: CodeOptions) => S;

/** The store over a vector file that `put` writes the way the catalog does (rows first, then the ids, then the codes). */
export function openCodeStore<S extends CodeStore>(open: OpenCodes<S>, dir: string, dim: number, metric: Metric, rescore: number, trainSize: number) {
  const rows = new RowWriter(join(dir, 'vectors.f32'), dim);
  const slots = SlotFile.open(join(dir, 'vectors'), dim, join(dir, 'vectors.f32'));
  const store = open(join(dir, 'vectors'), slots, metric, { rescore, trainSize });
  const put = (ids: BigInt64Array, vectors: Float32Array, prepared?: PreparedVectors) => {
    slots.assign(ids, rows.write(vectors));
    store.add(vectors, ids, prepared);
  };
  return { slots, store, put, rows, close: () => { store.close(); slots.close(); rows.close(); } };
}

/** Adds rows of `data` as ids 1..n in batches, as VectorState does. */
export function fill(put: (ids: BigInt64Array, vectors: Float32Array) => void, data: Float32Array, dim: number, batch = 500): BigInt64Array {
  const n = data.length / dim;
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
  for (let first = 0; first < n; first += batch) {
    const part = ids.subarray(first, first + batch);
    const rows = data.subarray(first * dim, (first + part.length) * dim);
    put(part, rows);
  }
  return ids;
}

/** The first k ids by score (ip: highest first). */
export function topK(scores: Float32Array, ids: BigInt64Array, k: number, metric: Metric): BigInt64Array {
  return BigInt64Array.from([...rankByScore(scores.slice(), metric === 'ip' ? 1 : -1, k)].slice(0, k), (p) => ids[p]!);
}

/** recall@10 of the store's ranking against exact float32 (FAISS flat) over all items, one per query. */
export async function recallVsF32<S extends CodeStore>(open: OpenCodes<S>, data: Float32Array, dim: number, metric: Metric, queries: Float32Array, rescore: number): Promise<number> {
  const tmp = tempDir();
  const { put, store, close } = openCodeStore(open, tmp.dir, dim, metric, rescore, 1000);
  const flat = VectorIndex.create({ dim, metric });
  try {
    const ids = fill(put, data, dim);
    flat.add(data, ids);
    await store.training();
    assert.ok(store.trained);
    const q = queries.length / dim;
    const found = new BigInt64Array(q * 10);
    const truth = new BigInt64Array(q * 10);
    for (let i = 0; i < q; i++) {
      const query = queries.subarray(i * dim, (i + 1) * dim);
      found.set(topK(store.scoreSubset(query, ids), ids, 10, metric), i * 10);
      truth.set(topK(flat.scoreSubset(query, ids), ids, 10, metric), i * 10);
    }
    return recallAtK(found, truth, q, 10);
  } finally {
    flat.close();
    close();
    tmp.cleanup();
  }
}

/**
 * Scores `all` (ids 0..n+1; 0 and n+1 absent) on the store and on exact float32: absent ids NaN, the best `rescore`
 * exact, fewer than 100 others exact (they keep code scores), every score within `bound` of the exact one. Returns
 * the store's scores.
 */
export function checkRescored(store: CodeStore, flat: VectorIndex, query: Float32Array, n: number, rescore: number, bound: number, label: string): Float32Array {
  const all = BigInt64Array.from({ length: n + 2 }, (_, i) => BigInt(i));
  const got = store.scoreSubset(query, all);
  const want = flat.scoreSubset(query, all);
  assert.ok(Number.isNaN(got[0]!) && Number.isNaN(got[n + 1]!), `${label}: absent ids score NaN`);
  const best = [...rankByScore(got.slice(), 1, rescore)].slice(0, rescore);
  for (const p of best) assert.equal(got[p], want[p], `${label}: the rescored top is exact`);
  const exactCount = Array.from(got).filter((x, p) => x === want[p]).length;
  assert.ok(exactCount < 100, `${label}: the others keep their code scores (${exactCount} equal)`);
  let maxError = 0;
  for (let p = 1; p <= n; p++) maxError = Math.max(maxError, Math.abs(got[p]! - want[p]!));
  assert.ok(maxError < bound, `${label}: code scores within the quantisation error (${maxError})`);
  return got;
}

export interface TrainRestartCase {
  dim: number;
  /** Rows added as ids 1..n: the first `before` (fewer than the store trains on) in batches of 50, then the rest at once. */
  data: Float32Array;
  before: number;
  trainSize: number;
  /** Largest difference of a code score from the exact one. */
  bound: number;
  /** The codes file (`vectors.<ext>`) and its size once trained; empty before. */
  file: string;
  trainedBytes?: number;
  /** Checks on the freshly opened store. */
  opened?: (store: CodeStore) => void;
}

/**
 * Untrained: every score exact, codes file empty; after the rows that complete the training set: the top 5 exact,
 * the rest code scores (checkRescored); reopened: every score exact while the codes file is read in the background,
 * then the same scores as before.
 */
export async function trainAndRestart<S extends CodeStore>(open: OpenCodes<S>, c: TrainRestartCase): Promise<void> {
  const { dim, data, before } = c;
  const n = data.length / dim;
  const tmp = tempDir();
  const flat = VectorIndex.create({ dim, metric: 'ip' });
  try {
    const query = Float32Array.from({ length: dim }, (_, i) => Math.sin(3 * i + 1));
    let { put, store, close } = openCodeStore(open, tmp.dir, dim, 'ip', 5, c.trainSize);
    c.opened?.(store);
    const ids = fill(put, data.subarray(0, before * dim), dim, 50);
    flat.add(data.subarray(0, before * dim), ids);
    assert.equal(store.trained, false);
    assert.deepEqual(store.scoreSubset(query, ids), flat.scoreSubset(query, ids), 'before training every score is exact');
    const path = join(tmp.dir, c.file);
    assert.equal(statSync(path).size, 0);
    const more = BigInt64Array.from({ length: n - before }, (_, i) => BigInt(before + 1 + i));
    put(more, data.subarray(before * dim));
    flat.add(data.subarray(before * dim), more);
    await store.training(); // pq trains on the libuv pool (test/vector/pq-training.test.ts); sq8 has trained already
    assert.equal(store.trained, true);
    assert.equal(store.ntotal, n);
    if (c.trainedBytes !== undefined) assert.equal(statSync(path).size, c.trainedBytes, 'the header, then the codes of every slot');
    const scores = checkRescored(store, flat, query, n, 5, c.bound, 'live');
    close();
    ({ store, close } = openCodeStore(open, tmp.dir, dim, 'ip', 5, c.trainSize));
    store.load();
    assert.equal(store.trained, true);
    const all = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
    assert.deepEqual(store.scoreSubset(query, all), flat.scoreSubset(query, all), 'while the codes are read in: exact scores');
    await store.codesLoaded();
    assert.deepEqual(checkRescored(store, flat, query, n, 5, c.bound, 'restarted'), scores, 'the same scores after loading the codes file');
    close();
  } finally {
    flat.close();
    tmp.cleanup();
  }
}

/** The quantiser in the header of a codes file (after magic, dim and parameter): `floats` of them. */
export function storedPayload(path: string, floats: number): Float32Array {
  const fd = openSync(path, 'r');
  try {
    const payload = new Float32Array(floats);
    readSync(fd, new Uint8Array(payload.buffer), 0, payload.byteLength, 16);
    return payload;
  } finally {
    closeSync(fd);
  }
}

/** A PqCodes holder of the quantiser stored in a pq codes file: its centroids and its limit on squared residuals. */
export function storedPq(path: string, dim: number, metric: Metric, m = dim / 2): NativeCodes {
  const payload = storedPayload(path, 256 * dim + 1);
  return new (loadFaissBinding().PqCodes)(dim, metric, m, payload.subarray(0, 256 * dim), true, payload[256 * dim]);
}

/**
 * How many of `vectors` the quantiser stored in the pq codes file at `path` flags (their last code 255): what a count
 * of the live items must say.
 */
export function pqFlaggedCount(path: string, dim: number, vectors: Iterable<Float32Array>, m = dim / 2): number {
  const codes = storedPq(path, dim, 'ip', m);
  try {
    let n = 0;
    for (const v of vectors) if (codes.encode(v)[m - 1] === 255) n++;
    return n;
  } finally {
    codes.close();
  }
}

/**
 * A store's scores (`got`) against the exact ones (`want`) and each key's code score under the stored quantiser
 * (`fromCodes`, of its current vector): absent in all or none; at least `rescore` exact; every other one its code score
 * less one shift common to all of them (the re-scored top stays above the code scores).
 */
export function checkCodeScores(got: Float32Array, want: Float32Array, fromCodes: Float32Array, rescore: number): void {
  let exact = 0;
  const shifts: number[] = [];
  for (let i = 0; i < got.length; i++) {
    assert.equal(Number.isNaN(got[i]!), Number.isNaN(want[i]!), `key ${i}: present in both or neither`);
    if (Number.isNaN(want[i]!)) continue;
    if (got[i] === want[i]) exact++;
    else shifts.push(fromCodes[i]! - got[i]!);
  }
  assert.ok(exact >= rescore, `the re-scored top is exact (${exact} exact scores)`);
  assert.ok(shifts.length > 200, `the others keep code scores (${shifts.length})`);
  const spread = Math.max(...shifts) - Math.min(...shifts);
  assert.ok(Math.min(...shifts) >= -1e-5 && spread < 1e-4, `every other score is its vector's code score (shifts ${Math.min(...shifts)}..${Math.max(...shifts)})`);
}
