/**
 * The compressed rerank storage pq (config `vectors.storage` = pq): each vector as FAISS product-quantisation
 * codes in memory (faiss::ProductQuantizer: `m` sub-quantizers of 8 bits over dim / m dimensions each, so m bytes
 * per vector: 64 at 512-d by default, a 32nd of float32); scoring, re-scoring the best candidates exactly from the
 * slot file, and the file are code-store.ts's. A rerank builds one asymmetric table per query (ip: the query's
 * sub-vector against each centroid; l2: their squared distance; m x 256 floats) and sums its entries over each
 * candidate's codes, natively (native/src/pq_codes.cc).
 *
 * Training: k-means per sub-space (FAISS, TRAIN_NITER iterations, fixed seed: the same vectors give the same
 * codebooks) on the first `trainSize` vectors, at least 256 (one per centroid; until then every candidate is
 * scored exactly from the slot file), on the libuv pool while writes go on (code-training.ts). The codebooks stay
 * until a rebuild.
 *
 * Outliers: each row carries a flag, set when the vector's squared residual (its distance to its decoding) is above a
 * limit measured on training rows held out of the k-means (residualLimit): an item the codebooks do not reach (a much
 * larger norm) whose code score may be far off, so a rerank always scores a flagged row exactly
 * (native/src/flagged_codes.h), as sq8 does its clamped rows. The flag is the last sub-quantizer's code 255, which its
 * codebook reserves (native/src/pq_codes.h), so rows stay m bytes.
 *
 *   <base>.pq    header (magic, dim, m, centroids[m][256][dim / m]: 1 KiB per dimension, the flag's limit) padded to
 *                4 KiB, then slot s at HEADER + s * m. Empty = not trained yet. A file for another m, or of an earlier
 *                format (FORMER), is refused (rebuilt).
 */
import { SidxError } from '../errors.ts';
import { loadFaissBinding, type NativeCodes } from './binding.ts';
import { CodeStore, type CodeOptions } from './code-store.ts';
import type { Fitted } from './code-training.ts';
import type { SlotFile } from './slot-file.ts';
import { callNativeAsync, type Metric } from './vector-index.ts';

export interface PqOptions extends CodeOptions {
  /** Sub-quantizers (bytes per vector); 0 = the default for the dimension (pqSubquantizers). */
  pqM: number;
  /** RESIDUAL_MARGIN and RESIDUAL_QUANTILE unless given (benchmarks compare others). */
  residualMargin?: number;
  residualQuantile?: number;
}

const MAGIC = Buffer.from('SIDXPQ3\n', 'latin1');
/**
 * Earlier formats, refused at load and rebuilt from the vector file: SIDXPQ8, before the outlier flags; SIDXPQ2, an
 * interim layout of stop 51 (a flag byte after each row's m codes), never released.
 */
const FORMER = [
  { magic: Buffer.from('SIDXPQ8\n', 'latin1'), what: 'no outlier flags' },
  { magic: Buffer.from('SIDXPQ2\n', 'latin1'), what: 'a flag byte after each row\'s codes' },
];
const KSUB = 256;
const TRAIN_NITER = 10;
const TRAIN_SEED = 1234;
/** vectors.rescore 0: see docs/benchmarks.md, "Compressed vectors". */
export const PQ_RESCORE = 200;
/**
 * The limit on a row's squared residual: the held-out training rows' RESIDUAL_QUANTILE (a few stray items among them
 * do not lift it, as their largest would), its norm widened by RESIDUAL_MARGIN; docs/benchmarks.md, "Where it stands
 * (stop 51)".
 */
export const RESIDUAL_QUANTILE = 0.99;
export const RESIDUAL_MARGIN = 0.25;

/** The limit for pqTrain's held-out residuals: Infinity (nothing flagged) when there are none (below 512 rows). */
export function residualLimit(heldOut: Float32Array, quantile = RESIDUAL_QUANTILE, margin = RESIDUAL_MARGIN): number {
  if (heldOut.length === 0) return Infinity;
  const sorted = Float32Array.from(heldOut).sort();
  return sorted[Math.floor(quantile * (sorted.length - 1))]! * (1 + margin) ** 2;
}

/**
 * The sub-quantizers for `dim`: `pqM` when it divides dim (throws SIDX_ERR_CONFIG naming vectors.pqM otherwise);
 * for 0, dim / 2 (256 bytes at 512-d: the smallest code that kept recall@10 within 0.01 of f32 at 1M items, with
 * rescore 200; docs/benchmarks.md), or dim / d for the smallest divisor d > 2 of dim when 2 does not divide it.
 */
export function pqSubquantizers(dim: number, pqM: number): number {
  if (pqM > 0) {
    if (dim % pqM === 0) return pqM;
    throw new SidxError('SIDX_ERR_CONFIG', `configuration vectors.pqM: ${pqM} does not divide the model's dimension ${dim} `
      + '(each sub-quantizer covers dim / pqM dimensions); choose a divisor, or 0 for dim / 2', { field: 'vectors.pqM' });
  }
  let sub = Math.min(2, dim);
  while (dim % sub !== 0) sub++;
  return dim / sub;
}

export class PqStore extends CodeStore {
  readonly #margin: number;
  readonly #quantile: number;

  private constructor(base: string, slots: SlotFile, metric: Metric, opts: PqOptions, m: number) {
    super(base, slots, metric, opts, {
      name: 'pq', magic: MAGIC, former: FORMER, codeSize: m, param: m, paramName: 'sub-quantizers',
      payloadBytes: 4 * KSUB * slots.dim + 4, minTrain: KSUB, defaultRescore: PQ_RESCORE, rescoreFrom: 'read',
    });
    this.#margin = opts.residualMargin ?? RESIDUAL_MARGIN;
    this.#quantile = opts.residualQuantile ?? RESIDUAL_QUANTILE;
  }

  /** Sub-quantizers: code bytes per vector. */
  get m(): number {
    return this.codeSize;
  }

  /** Opens (creating it if missing) `<base>.pq` beside `slots`; call `load` (after nothing else) or `reset` next. */
  static open(base: string, slots: SlotFile, metric: Metric, opts: PqOptions): PqStore {
    return new PqStore(base, slots, metric, opts, pqSubquantizers(slots.dim, opts.pqM));
  }

  protected empty(): NativeCodes {
    return new (loadFaissBinding().PqCodes)(this.dim, this.metric, this.m, null, this.hugePages);
  }

  /** On the libuv pool: 2-2.5 s for 10,000 x 512 at m = 256 (docs/benchmarks.md), which a write must not wait for. */
  protected async fit(sample: Int32Array): Promise<Fitted> {
    const rows = this.slotFile.readRows(sample);
    const { centroids, heldOut } = await callNativeAsync(() => loadFaissBinding().pqTrainAsync(rows, this.dim, this.m, { niter: TRAIN_NITER, seed: TRAIN_SEED }));
    const payload = new Float32Array(centroids.length + 1);
    payload.set(centroids);
    payload[centroids.length] = residualLimit(heldOut, this.#quantile, this.#margin);
    return { codes: this.#holder(payload), payload: new Uint8Array(payload.buffer) };
  }

  protected parse(payload: Buffer): NativeCodes {
    return this.#holder(new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.length)));
  }

  /** The holder of a payload: the centroids, then the limit on squared residuals. */
  #holder(payload: Float32Array): NativeCodes {
    const centroids = payload.subarray(0, KSUB * this.dim);
    return new (loadFaissBinding().PqCodes)(this.dim, this.metric, this.m, centroids, this.hugePages, payload[KSUB * this.dim]);
  }
}
