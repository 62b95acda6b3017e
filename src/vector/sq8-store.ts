/**
 * The compressed rerank storage sq8 (config `vectors.storage` = sq8): each vector as dim 8-bit codes in memory (a
 * quarter of float32); scoring, re-scoring the best candidates exactly from the slot file, training and the file
 * are code-store.ts's.
 *
 * Quantiser: per dimension, code = round((x - vmin) / step) clamped to 0..255, decoded as vmin + code * step. Codes
 * 1..254 cover the min/max of the first `trainSize` vectors widened by RANGE_MARGIN of their span on each side (until
 * then every candidate is scored exactly from the slot file); 0 and 255 mean clamped: a value beyond the widened range,
 * whose code score may be far off (an item with a much larger norm than the first ones, a drifted catalog), so a
 * rerank always scores a row holding one exactly (sq8_codes.h clampedAt). The ranges stay until a rebuild.
 *
 *   <base>.sq8   header (magic, dim, SQ8_VERSION, vmin[dim], step[dim]) padded to 4 KiB, then slot s at HEADER + s * dim.
 *                Empty = not trained yet.
 */
import { loadFaissBinding, type NativeCodes } from './binding.ts';
import { CodeStore, type CodeOptions } from './code-store.ts';
import type { Fitted } from './code-training.ts';
import type { SlotFile } from './slot-file.ts';
import type { Metric } from './vector-index.ts';

export { bestPositions } from './code-ranking.ts';
export interface Sq8Options extends CodeOptions {
  /** RANGE_MARGIN unless given (benchmarks compare others). */
  rangeMargin?: number;
}

const MAGIC = Buffer.from('SIDXSQ8\n', 'latin1');
/**
 * The header's parameter: 1 since stop 50 (ranges with a margin, codes 0 and 255 reserved, free slots neutral). A file of
 * version 0 is refused at load and rebuilt from the vector file: its ranges' extremes and its free slots' zero rows would
 * read as clamped.
 */
const SQ8_VERSION = 1;
/** vectors.rescore 0: at 1M items 50 lost no recall@10 against f32 (docs/benchmarks.md, "Compressed vectors"). */
export const SQ8_RESCORE = 50;

/**
 * The share of a dimension's training span added on each side before it is cut into 253 steps: later items rarely
 * leave it (clamped rows are re-scored exactly, so each one costs a read), and each step is only 1 + 2 * margin times
 * wider (docs/benchmarks.md, "Where it stands (stop 50)").
 */
export const RANGE_MARGIN = 0.1;

export class Sq8Store extends CodeStore {
  readonly #margin: number;

  private constructor(base: string, slots: SlotFile, metric: Metric, opts: Sq8Options) {
    super(base, slots, metric, opts, { name: 'sq8', magic: MAGIC, codeSize: slots.dim, param: SQ8_VERSION, paramName: 'format version', payloadBytes: 8 * slots.dim, minTrain: 1, defaultRescore: SQ8_RESCORE, rescoreFrom: 'map' });
    this.#margin = opts.rangeMargin ?? RANGE_MARGIN;
  }

  /** Opens (creating it if missing) `<base>.sq8` beside `slots`; call `load` (after nothing else) or `reset` next. */
  static open(base: string, slots: SlotFile, metric: Metric, opts: Sq8Options): Sq8Store {
    return new Sq8Store(base, slots, metric, opts);
  }

  protected empty(): NativeCodes {
    const zeros = new Float32Array(this.dim);
    return new (loadFaissBinding().Sq8Codes)(this.dim, this.metric, zeros, zeros, this.hugePages);
  }

  /** Per-dimension min/max of the sample, widened (fitRange). */
  protected fit(sample: Int32Array): Fitted {
    const dim = this.dim;
    const vmin = new Float32Array(dim).fill(Infinity);
    const vmax = new Float32Array(dim).fill(-Infinity);
    this.slotFile.chunks(sample, (_part, rows) => {
      for (let o = 0; o < rows.length; o += dim) {
        for (let d = 0; d < dim; d++) {
          const x = rows[o + d]!;
          if (x < vmin[d]!) vmin[d] = x;
          if (x > vmax[d]!) vmax[d] = x;
        }
      }
    });
    const step = new Float32Array(dim);
    for (let d = 0; d < dim; d++) [vmin[d], step[d]] = fitRange(vmin[d]!, vmax[d]!, this.#margin);
    const payload = new Float32Array(2 * dim);
    payload.set(vmin);
    payload.set(step, dim);
    return { codes: this.#holder(vmin, step), payload: new Uint8Array(payload.buffer) };
  }

  protected parse(payload: Buffer): NativeCodes {
    const floats = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.length));
    return this.#holder(floats.subarray(0, this.dim), floats.subarray(this.dim));
  }

  #holder(vmin: Float32Array, step: Float32Array): NativeCodes {
    return new (loadFaissBinding().Sq8Codes)(this.dim, this.metric, vmin, step, this.hugePages);
  }
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * One dimension's (vmin, step) for the sample's [lo, hi]: the span widened by `margin` on each side and cut into 253
 * steps above code 0, so that lo and hi encode within 1..254 as sq8_codes.cc encodes them (float32 arithmetic, round
 * half to even). A span too narrow for float32 steps at its magnitude (a constant dimension, a few ulps) is widened to
 * a 2^-10 share of the magnitude, and doubled until the ends fit (8 times at most; values near float32's limits may
 * still take 0 or 255: exact re-scores, not a failure); vmin and step stay finite.
 */
export function fitRange(lo: number, hi: number, margin: number): [number, number] {
  let span = Math.max(hi - lo, Math.max(Math.abs(lo), Math.abs(hi)) * 2 ** -10, 2 ** -100);
  for (let widened = 0; ; widened++) {
    const step = Math.fround(Math.min((span * (1 + 2 * margin)) / 253, FLOAT32_MAX / 256));
    const vmin = Math.fround(Math.max(lo - margin * span - step, -FLOAT32_MAX));
    if (widened === 8 || (codeOf(lo, vmin, step) >= 1 && codeOf(hi, vmin, step) <= 254)) return [vmin, step];
    span *= 2;
  }
}

/** The code sq8_codes.cc's EncodeValue gives x (float32 steps, round half to even, clamped to 0..255). */
export function codeOf(x: number, vmin: number, step: number): number {
  const inverse = step > 0 ? Math.fround(1 / step) : 0;
  const q = Math.fround(Math.fround(x - vmin) * inverse);
  let rounded = Math.round(q);
  if (rounded - q === 0.5 && rounded % 2 !== 0) rounded -= 1; // Math.round takes halves up; the encoder to even
  return Number.isNaN(q) ? 255 : Math.min(255, Math.max(0, rounded));
}
