/**
 * Storage modes sq8 and pq as a VectorStore (vector-store.ts): the float32 vectors stay in the catalog's vector file
 * (slot-file.ts knows their rows; the re-score reads them through the mapping for sq8, by pread for pq) and their
 * codes live in memory (code-store.ts: sq8-store.ts or pq-store.ts), which the rerank scores before re-scoring its
 * best candidates exactly from the file.
 */
import { rmSync } from 'node:fs';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import type { CodeStore } from './code-store.ts';
import { PqStore, pqSubquantizers } from './pq-store.ts';
import { SlotFile } from './slot-file.ts';
import { Sq8Store } from './sq8-store.ts';
import type { Metric } from './vector-index.ts';
import { MappedSlotStore, type CodeLayoutTarget, type OpenStore, type PreparedVectors, type VectorStore } from './vector-store.ts';

/** Opens a code store's file at `base` beside the slot file. */
export type OpenCodes = (base: string, file: SlotFile, metric: Metric) => CodeStore;

export class CodedSlotStore implements VectorStore {
  readonly dim: number;
  readonly metric: Metric;
  readonly codes: CodeStore;
  /**
   * The codes scored and ranked off the event loop (the service's rerank under load), and `rank`, the same native
   * ranking on the event loop (a lone retrieve).
   */
  readonly scoreAsync: (query: Float32Array, keys: BigInt64Array, exactTop?: number) => Promise<Float32Array>;
  readonly rankAsync: (query: Float32Array, keys: BigInt64Array, k: number) => Promise<{ scores: Float32Array; top?: Int32Array }>;
  readonly rank: (query: Float32Array, keys: BigInt64Array, k: number) => { scores: Float32Array; top?: Int32Array };
  readonly layout: CodeLayoutTarget;
  #file: SlotFile;

  private constructor(file: SlotFile, codes: CodeStore, metric: Metric) {
    this.#file = file;
    this.codes = codes;
    this.dim = file.dim;
    this.metric = metric;
    this.layout = codes.layout;
    this.scoreAsync = (query, keys, exactTop) => codes.scoreSubsetAsync(query, keys, exactTop);
    this.rankAsync = (query, keys, k) => codes.rankSubsetAsync(query, keys, k, k);
    this.rank = (query, keys, k) => codes.rankSubset(query, keys, k, k);
  }

  /** Opens (creating them if missing) `<base>.ids` and the code store's file over `vectorFile`. */
  static open(base: string, dim: number, metric: Metric, vectorFile: string, openCodes: OpenCodes): CodedSlotStore {
    return SlotFile.with(base, dim, vectorFile, (file) => new CodedSlotStore(file, openCodes(base, file, metric), metric));
  }

  get ntotal(): number {
    return this.#file.size;
  }

  load(): void {
    this.codes.load();
  }

  loaded(): Promise<void> | null {
    return this.codes.codesLoaded();
  }

  training(): Promise<boolean> | null {
    return this.codes.training();
  }

  clampedRows(): number {
    return this.codes.clampedRows();
  }

  get codesName(): string {
    return this.codes.name;
  }

  reset(): void {
    this.#file.reset();
    this.codes.reset();
  }

  /** The rows first: the codes go where the vectors are. */
  put(keys: BigInt64Array, slots: Uint32Array, vectors?: Float32Array, prepared?: PreparedVectors): void {
    const before = this.#file.slotsOf(keys);
    this.#file.assign(keys, slots);
    // Rows read back only when they will be encoded now (a rebuild passes none; before the training they are held as keys).
    const encodes = this.codes.encodes;
    const rows = vectors ?? new Float32Array(encodes ? keys.length * this.dim : 0);
    if (!vectors && encodes) this.#file.readSlots(Int32Array.from(slots), rows);
    this.codes.add(rows, keys, prepared);
    this.codes.releaseSlots(before.filter((s, i) => s !== slots[i])); // moved: the old rows are free
  }

  prepare(vectors: Float32Array): Promise<PreparedVectors> | null {
    return this.codes.prepare(vectors);
  }

  /** The slot file first: the codes of the freed slots are released only once no key maps to them. */
  remove(keys: BigInt64Array): number {
    const slots = this.#file.slotsOf(keys);
    const removed = this.#file.remove(keys);
    this.codes.releaseSlots(slots);
    return removed;
  }

  filling(fill: () => void): void {
    this.codes.filling(fill);
  }

  score(query: Float32Array, keys: BigInt64Array, exactTop = 0): Float32Array {
    return this.codes.scoreSubset(query, keys, exactTop);
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

/** The codes files of the storage modes that keep them. */
const CODE_FILES = { sq8: 'sq8', pq: 'pq' } as const;

/**
 * The store of config `vectors`: f32 (the mapped slot file), sq8 or pq. A mode does not keep the other modes' codes
 * current, so it removes their files: a stale one would be loaded when that mode is chosen again.
 */
export function storeOpener(vectors: Config['vectors']): OpenStore {
  const stale = (base: string) => {
    for (const [mode, ext] of Object.entries(CODE_FILES)) if (mode !== vectors.storage) rmSync(`${base}.${ext}`, { force: true });
  };
  const { storage } = vectors;
  if (storage === 'f32') {
    return (base, dim, metric, vectorFile) => {
      stale(base);
      return MappedSlotStore.open(base, dim, metric, vectorFile);
    };
  }
  const openCodes: OpenCodes = storage === 'sq8'
    ? (base, file, metric) => Sq8Store.open(base, file, metric, vectors)
    : (base, file, metric) => PqStore.open(base, file, metric, vectors);
  return (base, dim, metric, vectorFile) => {
    if (storage === 'pq') pqSubquantizers(dim, vectors.pqM); // a bad vectors.pqM fails the start before any file changes
    stale(base);
    return CodedSlotStore.open(base, dim, metric, vectorFile, openCodes);
  };
}
