/**
 * The compressed rerank storage (config `vectors.storage` = sq8): each vector as dim 8-bit codes in memory (a
 * quarter of float32), addressed by its slot in the slot file (slot-file.ts), which keeps the float32 vectors on
 * disk. A rerank scores every candidate on the codes, then re-reads the best `rescore` of them from the slot file
 * (pread of those slots only, so the file is never mapped) and scores them exactly: the order at the top comes from
 * exact scores, the rest keep their code scores.
 *
 * Quantiser: per dimension, code = round((x - vmin) / step) clamped to 0..255, decoded as vmin + code * step, with
 * vmin/step from the min/max of the first `trainSize` vectors (until then every candidate is scored exactly from
 * the slot file). The ranges stay until a rebuild: values drifting outside a range clamp to its end, so their code
 * scores lose precision but the re-score of the top stays exact. A rebuild (e.g. after deleting the codes file)
 * trains again on the catalog's first `trainSize` items.
 *
 *   <base>.sq8   header (magic, dim, vmin[dim], step[dim]; written once trained) padded to 4 KiB, then slot s at
 *                HEADER + s * dim. Empty = not trained yet.
 *
 * Codes are written in place after each batch like the slot file and made durable by the same background sync
 * (`datasync`); the codes of the training sample are fdatasynced before the header is written, so a header on
 * disk always has its codes. Derived state: the owner (service/vector-state.ts) replays the change log after the
 * last sync and rebuilds on any doubt (`load` throws on a torn file).
 */
import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { SidxError } from '../errors.ts';
import { loadFaissBinding, type NativeSq8Codes } from './binding.ts';
import { readFully, writeFully } from './vector-file.ts';
import type { SlotFile } from './slot-file.ts';
import type { Metric } from './vector-index.ts';

const MAGIC = Buffer.from('SIDXSQ8\n', 'latin1');
const PAGE = 4096;
/** Slots per chunk when training or loading (16,384 x 512-d: 8 MiB of codes, 32 MiB of floats). */
const CHUNK_SLOTS = 16_384;

export interface Sq8Options {
  /** Candidates re-scored exactly from the slot file. */
  rescore: number;
  /** Vectors whose ranges train the quantiser. */
  trainSize: number;
}

export class Sq8Store {
  readonly dim: number;
  readonly metric: Metric;
  readonly #slots: SlotFile;
  readonly #opts: Sq8Options;
  readonly #header: number;
  #fd: number;
  #codes: NativeSq8Codes;
  #trained = false;
  /** Keys held before training (at most trainSize + one batch). */
  #untrained = new Set<bigint>();

  private constructor(fd: number, slots: SlotFile, metric: Metric, opts: Sq8Options) {
    this.#fd = fd;
    this.#slots = slots;
    this.dim = slots.dim;
    this.metric = metric;
    this.#opts = opts;
    this.#header = Math.ceil((16 + 8 * this.dim) / PAGE) * PAGE;
    this.#codes = newCodes(this.dim, metric);
  }

  /** Opens (creating it if missing) `<base>.sq8` beside `slots`; call `load` (after nothing else) or `reset` next. */
  static open(base: string, slots: SlotFile, metric: Metric, opts: Sq8Options): Sq8Store {
    return new Sq8Store(openSync(`${base}.sq8`, constants.O_RDWR | constants.O_CREAT, 0o644), slots, metric, opts);
  }

  get ntotal(): number {
    return this.#slots.size;
  }

  get trained(): boolean {
    return this.#trained;
  }

  /** Bytes of codes in memory. */
  get codeBytes(): number {
    return this.#codes.bytes;
  }

  /** Loads the slot file's ids and the codes; throws SIDX_ERR_STORE when the codes file is torn or foreign. */
  load(): void {
    const size = fstatSync(this.#fd).size;
    this.#trained = size > 0;
    if (this.#trained) this.#codes = this.#readHeader(size);
    this.#untrained.clear();
    this.#slots.load((ids) => {
      if (!this.#trained) for (const id of ids) this.#untrained.add(id);
    });
    if (!this.#trained) {
      if (this.#untrained.size >= this.#opts.trainSize) this.#train();
      return;
    }
    const slots = this.#slots.slots;
    const need = this.#header + slots * this.dim;
    if (size < need) throw new SidxError('SIDX_ERR_STORE', `sq8 codes file: ${size} bytes, the slot file's ${slots} slots need ${need}`);
    ftruncateSync(this.#fd, need);
    const chunk = new Uint8Array(Math.min(slots, CHUNK_SLOTS) * this.dim);
    for (let first = 0; first < slots; first += CHUNK_SLOTS) {
      const count = Math.min(CHUNK_SLOTS, slots - first);
      readFully(this.#fd, chunk.subarray(0, count * this.dim), this.#header + first * this.dim);
      this.#codes.put(Int32Array.from({ length: count }, (_v, i) => first + i), chunk.subarray(0, count * this.dim));
    }
  }

  /** Empties the codes file and forgets the ranges (a rebuild trains again). */
  reset(): void {
    ftruncateSync(this.#fd, 0);
    this.#codes.close();
    this.#codes = newCodes(this.dim, this.metric);
    this.#trained = false;
    this.#untrained.clear();
  }

  /** After the slot file stored `ids` (their slots must exist): encodes and writes their codes. */
  add(vectors: Float32Array, ids: BigInt64Array): void {
    const slots = this.#slots.slotsOf(ids);
    if (slots.includes(-1)) throw new SidxError('SIDX_ERR_VECTOR', 'sq8 store: an id has no slot in the slot file (put it there first)');
    if (!this.#trained) {
      for (const id of ids) this.#untrained.add(id);
      if (this.#untrained.size >= this.#opts.trainSize) this.#train();
      return;
    }
    this.#store(slots, this.#codes.encode(vectors));
  }

  /** Before the slot file frees them: the codes stay in place until the slot is reused. */
  remove(ids: BigInt64Array): number {
    for (const id of ids) this.#untrained.delete(id);
    return this.#slots.slotsOf(ids).reduce((n, s) => n + (s >= 0 ? 1 : 0), 0);
  }

  scoreSubset(query: Float32Array, ids: BigInt64Array): Float32Array {
    if (query.length !== this.dim) throw new SidxError('SIDX_ERR_DIMENSION', `query has ${query.length} floats, the index expects ${this.dim}`, { field: 'query' });
    const slots = this.#slots.slotsOf(ids);
    let scores: Float32Array;
    let chosen: Int32Array;
    if (this.#trained) {
      scores = this.#codes.score(query, slots);
      chosen = bestPositions(scores, this.#opts.rescore, this.metric === 'ip' ? 1 : -1);
    } else {
      scores = new Float32Array(ids.length).fill(Number.NaN);
      chosen = Int32Array.from(slots.keys()).filter((p) => slots[p]! >= 0);
    }
    if (chosen.length === 0) return scores;
    const picked = chosen.map((p) => slots[p]!);
    const rows = new Float32Array(chosen.length * this.dim);
    this.#slots.readSlots(picked, rows);
    const exact = this.#codes.exact(query, rows);
    for (let i = 0; i < chosen.length; i++) scores[chosen[i]!] = exact[i]!;
    return scores;
  }

  /** Everything written before the call is durable when it resolves (libuv pool). */
  async datasync(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      fdatasync(this.#fd, (err) => (err ? reject(new SidxError('SIDX_ERR_VECTOR', `sq8 codes file: fdatasync failed: ${err.message}`)) : resolve()));
    });
  }

  close(): void {
    if (this.#fd < 0) return;
    this.#codes.close();
    closeSync(this.#fd);
    this.#fd = -1;
  }

  /**
   * Ranges from the first trainSize keys held (read back from the slot file), then the codes of all of them (more
   * than trainSize only when a catalog stored as f32 is opened as sq8), then the header.
   */
  #train(): void {
    const keys = BigInt64Array.from(this.#untrained);
    const slots = this.#slots.slotsOf(keys);
    const dim = this.dim;
    const vmin = new Float32Array(dim).fill(Infinity);
    const vmax = new Float32Array(dim).fill(-Infinity);
    this.#chunks(slots.subarray(0, this.#opts.trainSize), (_part, rows) => {
      for (let o = 0; o < rows.length; o += dim) {
        for (let d = 0; d < dim; d++) {
          const x = rows[o + d]!;
          if (x < vmin[d]!) vmin[d] = x;
          if (x > vmax[d]!) vmax[d] = x;
        }
      }
    });
    const step = vmax.map((hi, d) => (hi - vmin[d]!) / 255);
    this.#codes.close();
    this.#codes = new (loadFaissBinding().Sq8Codes)(dim, this.metric, vmin, step);
    this.#chunks(slots, (part, rows) => this.#store(part, this.#codes.encode(rows)));
    fdatasyncSync(this.#fd);
    const header = Buffer.alloc(16 + 8 * dim);
    MAGIC.copy(header, 0);
    header.writeUInt32LE(dim, 8);
    Buffer.from(vmin.buffer).copy(header, 16);
    Buffer.from(step.buffer).copy(header, 16 + 4 * dim);
    writeFully(this.#fd, header, 0);
    fdatasyncSync(this.#fd);
    this.#trained = true;
    this.#untrained.clear();
  }

  /** Calls `each(slots, rows)` over `slots` CHUNK_SLOTS at a time, rows read from the slot file. */
  #chunks(slots: Int32Array, each: (part: Int32Array, rows: Float32Array) => void): void {
    const rows = new Float32Array(Math.min(slots.length, CHUNK_SLOTS) * this.dim);
    for (let first = 0; first < slots.length; first += CHUNK_SLOTS) {
      const part = slots.subarray(first, first + CHUNK_SLOTS);
      const view = rows.subarray(0, part.length * this.dim);
      this.#slots.readSlots(part, view);
      each(part, view);
    }
  }

  /** Writes codes (row i for slots[i]) to the file, one write per run of consecutive slots, and to memory. */
  #store(slots: Int32Array, codes: Uint8Array): void {
    let run = 0;
    for (let i = 1; i <= slots.length; i++) {
      if (i < slots.length && slots[i] === slots[i - 1]! + 1) continue;
      writeFully(this.#fd, codes.subarray(run * this.dim, i * this.dim), this.#header + slots[run]! * this.dim);
      run = i;
    }
    this.#codes.put(slots, codes);
  }

  #readHeader(size: number): NativeSq8Codes {
    const header = Buffer.alloc(16 + 8 * this.dim);
    if (size < this.#header) throw new SidxError('SIDX_ERR_STORE', `sq8 codes file: ${size} bytes, shorter than its header`);
    readFully(this.#fd, header, 0);
    if (!header.subarray(0, 8).equals(MAGIC) || header.readUInt32LE(8) !== this.dim) {
      throw new SidxError('SIDX_ERR_STORE', `sq8 codes file: not a ${this.dim}-d sidx codes file`);
    }
    const floats = new Float32Array(header.buffer.slice(header.byteOffset + 16, header.byteOffset + header.length));
    return new (loadFaissBinding().Sq8Codes)(this.dim, this.metric, floats.subarray(0, this.dim), floats.subarray(this.dim));
  }
}

/** A codes holder with no ranges yet (scores only through `exact`). */
function newCodes(dim: number, metric: Metric): NativeSq8Codes {
  const zeros = new Float32Array(dim);
  return new (loadFaissBinding().Sq8Codes)(dim, metric, zeros, zeros);
}

/**
 * Positions of the `count` best finite scores (sign 1: highest first, -1: lowest), ties at the cut included in
 * position order; all finite positions when there are no more than `count`.
 */
export function bestPositions(scores: Float32Array, count: number, sign: 1 | -1): Int32Array {
  const keyed = new Float32Array(scores.length);
  let finite = 0;
  for (let i = 0; i < scores.length; i++) if (Number.isFinite(scores[i]!)) keyed[finite++] = sign * scores[i]!;
  const take = Math.min(count, finite);
  const out = new Int32Array(take);
  if (take === 0) return out;
  const cut = finite <= count ? -Infinity : keyed.subarray(0, finite).sort()[finite - count]!;
  let n = 0;
  for (let i = 0; i < scores.length && n < take; i++) if (sign * scores[i]! > cut) out[n++] = i;
  for (let i = 0; i < scores.length && n < take; i++) if (sign * scores[i]! === cut) out[n++] = i;
  return out;
}
