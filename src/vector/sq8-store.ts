/**
 * The compressed rerank storage sq8 (config `vectors.storage` = sq8): each vector as dim 8-bit codes in memory (a
 * quarter of float32); scoring, re-scoring the best candidates exactly from the slot file, training and the file
 * are code-store.ts's.
 *
 * Quantiser: per dimension, code = round((x - vmin) / step) clamped to 0..255, decoded as vmin + code * step, with
 * vmin/step from the min/max of the first `trainSize` vectors (until then every candidate is scored exactly from
 * the slot file). The ranges stay until a rebuild: values drifting outside a range clamp to its end, so their code
 * scores lose precision but the re-score of the top stays exact.
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
export type Sq8Options = CodeOptions;

const MAGIC = Buffer.from('SIDXSQ8\n', 'latin1');
/** vectors.rescore 0: at 1M items 50 lost no recall@10 against f32 (docs/benchmarks.md, "Compressed vectors"). */
export const SQ8_RESCORE = 50;

export class Sq8Store extends CodeStore {
  private constructor(base: string, slots: SlotFile, metric: Metric, opts: Sq8Options) {
    super(base, slots, metric, opts, { name: 'sq8', magic: MAGIC, codeSize: slots.dim, param: 0, payloadBytes: 8 * slots.dim, minTrain: 1, defaultRescore: SQ8_RESCORE, rescoreFrom: 'map' });
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
    const step = vmax.map((hi, d) => (hi - vmin[d]!) / 255);
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
