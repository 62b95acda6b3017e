/**
 * Storage mode sq8 as a VectorStore (vector-store.ts): the float32 vectors stay in the catalog's vector file (read
 * with pread, never mapped, so they stay out of the process's RSS; slot-file.ts knows their rows) and their 8-bit
 * codes live in memory (sq8-store.ts), which the rerank scores before re-scoring its best candidates exactly from
 * the file.
 */
import { rmSync } from 'node:fs';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import { SlotFile } from './slot-file.ts';
import { Sq8Store, type Sq8Options } from './sq8-store.ts';
import type { Metric } from './vector-index.ts';
import { MappedSlotStore, type OpenStore, type VectorStore } from './vector-store.ts';

export class Sq8SlotStore implements VectorStore {
  readonly dim: number;
  readonly metric: Metric;
  readonly codes: Sq8Store;
  #file: SlotFile;

  private constructor(file: SlotFile, codes: Sq8Store, metric: Metric) {
    this.#file = file;
    this.codes = codes;
    this.dim = file.dim;
    this.metric = metric;
  }

  /** Opens (creating them if missing) `<base>.ids` and `<base>.sq8` over `vectorFile`. */
  static open(base: string, dim: number, metric: Metric, vectorFile: string, opts: Sq8Options): Sq8SlotStore {
    return SlotFile.with(base, dim, vectorFile, (file) => new Sq8SlotStore(file, Sq8Store.open(base, file, metric, opts), metric));
  }

  get ntotal(): number {
    return this.#file.size;
  }

  load(): void {
    this.codes.load();
  }

  reset(): void {
    this.#file.reset();
    this.codes.reset();
  }

  /** The rows first: the codes go where the vectors are. */
  put(keys: BigInt64Array, slots: Uint32Array, vectors?: Float32Array): void {
    this.#file.assign(keys, slots);
    const rows = vectors ?? new Float32Array(keys.length * this.dim);
    if (!vectors) this.#file.readSlots(Int32Array.from(slots), rows);
    this.codes.add(rows, keys);
  }

  remove(keys: BigInt64Array): number {
    this.codes.remove(keys);
    return this.#file.remove(keys);
  }

  score(query: Float32Array, keys: BigInt64Array): Float32Array {
    return this.codes.scoreSubset(query, keys);
  }

  gather(keys: BigInt64Array): Float32Array {
    const slots = this.#file.slotsOf(keys);
    const missing = slots.indexOf(-1);
    if (missing >= 0) throw new SidxError('SIDX_ERR_VECTOR', `no stored vector for key ${keys[missing]}`);
    const rows = new Float32Array(keys.length * this.dim);
    this.#file.readSlots(slots, rows);
    return rows;
  }

  async datasync(): Promise<void> {
    await Promise.all([this.#file.datasync(), this.codes.datasync()]);
  }

  close(): void {
    this.codes.close();
    this.#file.close();
  }
}

/** The store of config `vectors`: f32 (the mapped slot file) or sq8. */
export function storeOpener(vectors: Config['vectors']): OpenStore {
  if (vectors.storage === 'sq8') return (base, dim, metric, vectorFile) => Sq8SlotStore.open(base, dim, metric, vectorFile, vectors);
  return (base, dim, metric, vectorFile) => {
    // f32 does not keep codes current: a codes file left from sq8 would be stale when sq8 is chosen again.
    rmSync(`${base}.sq8`, { force: true });
    return MappedSlotStore.open(base, dim, metric, vectorFile);
  };
}
