/**
 * Where the rerank's vectors live, and the one surface it scores through. `VectorScorer` is all a reader needs
 * (the rerank, the batched eval); `VectorStore` adds what the vector state (service/vector-state.ts) drives:
 * writes after each committed batch, a durability point, and open/reset. A storage mode is one implementation.
 *
 * `MappedSlotStore` (storage f32): scores straight from the catalog's vector file (`vectors.f32`,
 * vector/vector-file.ts, the only copy of each vector), through a shared read-only mapping (native SlotMap); the
 * catalog writes it (pwrite) before it commits, so a committed vector is visible to the next score at once and none
 * is copied into the heap. Which row holds which key comes from slot-file.ts: opening is reading its id file
 * (8 bytes per row) and an mmap, whatever the size; the pages the rerank touches are the page cache's, shared with
 * the kernel, not a second copy.
 */
import { SidxError } from '../errors.ts';
import { loadFaissBinding, type NativeSlotMap } from './binding.ts';
import { rescoreMoved, SlotFile } from './slot-file.ts';
import { callNative, callNativeAsync, type Metric } from './vector-index.ts';

export interface VectorScorer {
  readonly dim: number;
  readonly metric: Metric;
  /** Vectors stored. */
  readonly ntotal: number;
  /**
   * Inner product (ip) or squared L2 (l2) of `query` with each key's vector; NaN for a key not stored. `exactTop`: a
   * storage that scores on codes scores at least this many of the best exactly (the k a caller returns).
   */
  score(query: Float32Array, keys: BigInt64Array, exactTop?: number): Float32Array;
  /**
   * `score` with the vector reads and the math off the event loop, where the storage can (f32: the mapped file). The
   * result is as of when it resolves: a key written or deleted meanwhile is scored again as it is then.
   */
  scoreAsync?(query: Float32Array, keys: BigInt64Array, exactTop?: number): Promise<Float32Array>;
  /**
   * `scoreAsync` with `k` as exactTop, where the storage also ranks off the event loop (sq8, pq): `top` holds the best `k`
   * positions, best first, in service/score-rank.ts's order (absent when it could not rank them there).
   */
  rankAsync?(query: Float32Array, keys: BigInt64Array, k: number): Promise<{ scores: Float32Array; top?: Int32Array }>;
  /** `rankAsync` on the calling thread, where the storage ranks in one native call (sq8, pq). */
  rank?(query: Float32Array, keys: BigInt64Array, k: number): { scores: Float32Array; top?: Int32Array };
  /**
   * `scoreAsync` with the calling thread scoring part of the rows while a pool thread scores the rest: for a lone
   * request, whose rerank then takes about half the wall time on an otherwise idle core.
   */
  scoreShared?(query: Float32Array, keys: BigInt64Array, exactTop?: number): Promise<Float32Array>;
}

/** Fewer rows than this are scored on the calling thread alone by scoreShared: the hop would cost more. */
const SHARE_MIN_ROWS = 256;

/** Opens a storage mode's files at `base` (`<dir>/vectors`) over the catalog's vector file; `load` or `reset` follows. */
export type OpenStore = (base: string, dim: number, metric: Metric, vectorFile: string) => VectorStore;

/**
 * Codes in memory moved into an order of keys in steps (native/src/slot_codes.h PlanLayout): scores are the same
 * before, during and after; a rerank whose candidates lie together in that order reads runs of memory.
 */
export interface CodeLayoutTarget {
  /** Whether the codes can be laid out now (not before training, nor while the codes file is read). */
  ready(): boolean;
  /** The slot of each key into `out` (-1: not stored): what a plan orders. */
  slotsOf(keys: BigInt64Array, out: Int32Array): void;
  /** Starts a layout in the order of `slots` (slots given twice or not stored are skipped); call when ready(). */
  plan(slots: Int32Array): void;
  /** Up to `positions` of the plan on this thread; returns those left (0: done). */
  step(positions: number): number;
  /** Grows whenever some key's row changes (SlotFile.changes): how the layout notices writes. */
  changes(): number;
}

/** What a store derived from a batch's vectors before its write (VectorStore.prepare), for `put`. */
export interface PreparedVectors {
  /** Whatever derived them: `put` uses them only while it is current. */
  readonly by: object;
  readonly codes: Uint8Array;
}

export interface VectorStore extends VectorScorer {
  /** Reads the stored state back after a restart (ids only); throws when the files cannot be trusted. */
  load(): void;
  /**
   * sq8, pq: while what `load` left to read in the background (the codes) is read, a promise that resolves once it is
   * in memory and rejects when it could not be read (the store then scores exactly); null when nothing is being read.
   */
  loaded?(): Promise<void> | null;
  /**
   * pq: while its quantiser is trained in the background, a promise that resolves true once the codes are scored (false
   * when a reset or close dropped the training) and rejects when it failed (the store then scores exactly); null otherwise.
   */
  training?(): Promise<boolean> | null;
  /**
   * sq8, pq: live items whose codes are flagged (sq8: a value beyond the quantiser's ranges; pq: a residual above the
   * training items'), each re-scored exactly by every rerank that meets it. Undefined for f32.
   */
  clampedRows?(): number;
  /** sq8, pq: the codes' name, the extension of their file beside the slot file. */
  readonly codesName?: string;
  /** sq8, pq: runs `fill` (a whole catalog's writes: a rebuild) with the quantiser's training held until its end. */
  filling?(fill: () => void): void;
  /** Empties the store. */
  reset(): void;
  /** sq8, pq: the codes in memory can be laid out in an order of keys (service/code-layout.ts). */
  readonly layout?: CodeLayoutTarget;
  /**
   * keys[i]'s vector is now in row slots[i] of the vector file (already written there by the catalog); `vectors`,
   * when the caller has them, saves a mode that derives something from them (sq8 codes) reading them back.
   */
  put(keys: BigInt64Array, slots: Uint32Array, vectors?: Float32Array, prepared?: PreparedVectors): void;
  /**
   * pq: the codes of a batch's `vectors` computed on the libuv pool before its write (an upsert starts it beside its SID
   * encode), so that `put` does not encode them on the event loop; null when the store derives nothing costly (or is
   * not trained). Leave `vectors` untouched until it settles.
   */
  prepare?(vectors: Float32Array): Promise<PreparedVectors> | null;
  /** Drops the keys; ones not stored are ignored. Returns how many were stored. */
  remove(keys: BigInt64Array): number;
  /** The vectors of `keys`, keys.length x dim; throws SIDX_ERR_VECTOR for a key not stored. */
  gather(keys: BigInt64Array): Float32Array;
  /** Everything written before the call is durable when it resolves (off the event loop). */
  datasync(): Promise<void>;
  close(): void;
}

export class MappedSlotStore implements VectorStore {
  readonly dim: number;
  readonly metric: Metric;
  #file: SlotFile;
  #map: NativeSlotMap | null;

  private constructor(file: SlotFile, map: NativeSlotMap, metric: Metric) {
    this.#file = file;
    this.#map = map;
    this.dim = file.dim;
    this.metric = metric;
  }

  /** Opens (creating it if missing) `<base>.ids` and maps `vectorFile`; call `load` or `reset` next. */
  static open(base: string, dim: number, metric: Metric, vectorFile: string): MappedSlotStore {
    return SlotFile.with(base, dim, vectorFile, (file) => new MappedSlotStore(file, callNative(() => new (loadFaissBinding().SlotMap)(vectorFile, dim, metric)), metric));
  }

  get ntotal(): number {
    return this.#file.size;
  }

  load(): void {
    this.#file.load();
    this.#live().refresh(); // load may have cut a torn tail off
  }

  reset(): void {
    this.#file.reset();
    this.#live().refresh();
  }

  put(keys: BigInt64Array, slots: Uint32Array): void {
    this.#file.assign(keys, slots);
  }

  remove(keys: BigInt64Array): number {
    return this.#file.remove(keys);
  }

  score(query: Float32Array, keys: BigInt64Array): Float32Array {
    this.#checkQuery(query);
    const map = this.#live();
    return callNative(() => map.scoreSlots(query, this.#file.slotsOf(keys)));
  }

  scoreAsync(query: Float32Array, keys: BigInt64Array): Promise<Float32Array> {
    return this.#scoreOffThread(query, keys, 0);
  }

  async scoreShared(query: Float32Array, keys: BigInt64Array): Promise<Float32Array> {
    if (keys.length < SHARE_MIN_ROWS) return this.score(query, keys); // nothing awaited: no row can change meanwhile
    return this.#scoreOffThread(query, keys, keys.length >> 1);
  }

  /** The first `here` rows (fewer than all) scored on the calling thread, the others on the libuv pool meanwhile. */
  async #scoreOffThread(query: Float32Array, keys: BigInt64Array, here: number): Promise<Float32Array> {
    this.#checkQuery(query);
    const own = keys.slice(); // the caller may reuse its array meanwhile
    const slots = this.#file.slotsOf(own);
    const map = this.#live();
    const changes = this.#file.changes;
    let scores: Float32Array;
    if (here === 0) {
      scores = await callNativeAsync(() => map.scoreSlotsAsync(query, slots));
    } else {
      const rest = callNativeAsync(() => map.scoreSlotsAsync(query, slots.subarray(here)));
      let first: Float32Array;
      try {
        first = callNative(() => map.scoreSlots(query, slots.subarray(0, here)));
      } catch (err) {
        await rest.catch(() => undefined); // settled before the error leaves: no unhandled rejection behind it
        throw err;
      }
      scores = new Float32Array(slots.length);
      scores.set(first);
      scores.set(await rest, here);
    }
    rescoreMoved(this.#file, own, slots, changes, scores, (now) => callNative(() => this.#live().scoreSlots(query, now)));
    return scores;
  }

  gather(keys: BigInt64Array): Float32Array {
    const slots = this.#file.slotsOf(keys);
    const missing = slots.indexOf(-1);
    if (missing >= 0) throw new SidxError('SIDX_ERR_VECTOR', `no stored vector for key ${keys[missing]}`);
    const map = this.#live();
    return callNative(() => map.gather(slots));
  }

  datasync(): Promise<void> {
    return this.#file.datasync();
  }

  close(): void {
    this.#map?.close();
    this.#map = null;
    this.#file.close();
  }

  #checkQuery(query: Float32Array): void {
    if (query.length !== this.dim) throw new SidxError('SIDX_ERR_DIMENSION', `query has ${query.length} floats, expected ${this.dim}`, { field: 'embedding' });
  }

  #live(): NativeSlotMap {
    if (!this.#map) throw new SidxError('SIDX_ERR_VECTOR', 'the vector store is closed');
    return this.#map;
  }
}
