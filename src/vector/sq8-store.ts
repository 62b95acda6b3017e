/**
 * The compressed rerank storage sq8 (config `vectors.storage` = sq8): each vector as dim 8-bit codes in memory (a
 * quarter of float32); scoring, re-scoring the best candidates exactly from the slot file, training and the file
 * are code-store.ts's.
 *
 * Quantiser: per dimension, code = round((x - vmin) / step) clamped to 0..255, decoded as vmin + code * step. Codes
 * 1..254 cover the min/max of the first `trainSize` vectors widened by RANGE_MARGIN of their span on each side (until
 * then every candidate is scored exactly from the slot file); 0 and 255 mean clamped: a value beyond the widened range,
 * whose code score may be far off (an item with a much larger norm than the first ones, a drifted catalog), so a
 * rerank always scores a row holding one exactly (sq8_codes.h clampedAt). The ranges stay until a rebuild. Files fitted
 * before the margin (codes 0..255 over the plain min/max) read the same: their rows at a range's very end are
 * re-scored too, which costs time, not order.
 *
 *   <base>.sq8   header (magic, dim, 0, vmin[dim], step[dim]) padded to 4 KiB, then slot s at HEADER + s * dim.
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
    super(base, slots, metric, opts, { name: 'sq8', magic: MAGIC, codeSize: slots.dim, param: 0, payloadBytes: 8 * slots.dim, minTrain: 1, defaultRescore: SQ8_RESCORE, rescoreFrom: 'map' });
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

  /** Per-dimension min/max of the sample. */
  protected fit(sample: Int32Array): Fitted {
    const dim = this.dim;
    const vmin = new Float32Array(dim).fill(Infinity);
    const vmax = new Float32Array(dim).fill(-Infinity);
    this.chunks(sample, (_part, rows) => {
      for (let o = 0; o < rows.length; o += dim) {
        for (let d = 0; d < dim; d++) {
          const x = rows[o + d]!;
          if (x < vmin[d]!) vmin[d] = x;
          if (x > vmax[d]!) vmax[d] = x;
        }
      }
    });
    const margin = this.#margin;
    const step = new Float32Array(dim);
    for (let d = 0; d < dim; d++) {
      const lo = vmin[d]!;
      const span = vmax[d]! > lo ? vmax[d]! - lo : Math.max(Math.abs(lo), 1) * 2 ** -10; // a constant dimension keeps codes inside 1..254
      step[d] = (span * (1 + 2 * margin)) / 253;
      vmin[d] = lo - margin * span - step[d]!;
    }
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
