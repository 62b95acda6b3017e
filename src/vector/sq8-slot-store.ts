/**
 * Storage mode sq8 as a VectorStore (vector-store.ts): the float32 vectors in the slot file (slot-file.ts, written
 * and read with pwrite/pread, never mapped, so they stay out of the process's RSS) and their 8-bit codes in memory
 * (sq8-store.ts), which the rerank scores before re-scoring its best candidates exactly from the file.
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

  /** Opens (creating them if missing) `<base>.slots`, `<base>.ids` and `<base>.sq8`. */
  static open(base: string, dim: number, metric: Metric, opts: Sq8Options): Sq8SlotStore {
    return SlotFile.with(base, dim, (file) => new Sq8SlotStore(file, Sq8Store.open(base, file, metric, opts), metric));
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

  /** The slot file first: the codes go where the vectors went. */
  put(keys: BigInt64Array, vectors: Float32Array): void {
    this.#file.put(keys, vectors);
    this.codes.add(vectors, keys);
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
  if (vectors.storage === 'sq8') return (base, dim, metric) => Sq8SlotStore.open(base, dim, metric, vectors);
  return (base, dim, metric) => {
    // f32 does not keep codes current: a codes file left from sq8 would be stale when sq8 is chosen again.
    rmSync(`${base}.sq8`, { force: true });
    return MappedSlotStore.open(base, dim, metric);
  };
}
