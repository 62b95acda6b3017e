/**
 * What the compressed rerank storages (sq8-store.ts: 8-bit scalar codes; pq-store.ts: FAISS product-quantisation
 * codes) share: a fixed number of code bytes per vector in native memory, addressed by its slot in the slot file
 * (slot-file.ts), which keeps the float32 vectors on disk. A rerank scores every candidate on the codes, then
 * scores the best `rescore` of them exactly from the vector file, in one native call (SlotMap): through the shared
 * mapping (`rescoreFrom` 'map', sq8: fastest, the rows it touches count in the RSS as page cache) or by pread of
 * those rows only (`rescoreFrom` 'read', pq: the file's pages never enter the RSS). The order at the top comes from
 * exact scores, the rest keep their code scores.
 *
 * The quantiser is trained on the first `trainSize` vectors held (at least the subclass's `minTrain`); until then
 * every candidate is scored exactly from the slot file. It stays until a rebuild (e.g. after deleting the codes
 * file), which trains again on items spread over the whole catalog. When and how: code-training.ts (pq trains in the
 * background; `training()` says when it is done).
 *
 *   <base>.<name>  (code-file.ts) the header with the quantiser, then slot s's codes. Empty = not trained yet.
 *
 * Codes are written in place after each batch like the slot file and made durable by the same background sync
 * (`datasync`). Training writes the codes of what is held, then the header once they are durable: a file whose
 * training was cut short has no magic and is refused.
 * Derived state: the owner (service/vector-state.ts) replays the change log after the last sync and rebuilds on
 * any doubt (`load` throws SIDX_ERR_STORE on a torn or foreign file).
 */
import { SidxError } from '../errors.ts';
import { loadFaissBinding, type NativeCodes, type NativeSlotMap } from './binding.ts';
import { DENSE_IDS, type SlotFile } from './slot-file.ts';
import { giveScratch, takeScratch, withExact } from './code-ranking.ts';
import { callNative, callNativeAsync, checkQuery, type Metric } from './vector-index.ts';
import type { CodeLayoutTarget, PreparedVectors } from './vector-store.ts';
import { CodesFile } from './code-file.ts';
import { CodeTraining, type Fitted } from './code-training.ts';
import type { CodeFormat, CodeOptions } from './code-format.ts';

export type { CodeFormat, CodeOptions };

const NONE: Int32Array = new Int32Array(0);


/** A write to the codes held back while the codes file is read: codes put at slots, or slots released. */
type Pending = { slots: Int32Array; codes: Uint8Array } | { slots: Int32Array; release: true; settle: boolean };

export abstract class CodeStore {
  readonly dim: number;
  readonly metric: Metric;
  protected readonly slotFile: SlotFile;
  readonly #opts: CodeOptions;
  readonly #format: CodeFormat;
  readonly #file: CodesFile;
  #codes: NativeCodes;
  /** The vector file, for exact scores. */
  #rows: NativeSlotMap;
  #trained = false;
  readonly #training: CodeTraining;
  /** While the codes file is read in the background (load): the codes written meanwhile, put once it is in. */
  #pending: Pending[] | null = null;
  #loaded: Promise<void> = Promise.resolve();
  /** The background read failed: candidates stay scored exactly until the next open. */
  #loadFailed = false;
  #closed = false;

  protected constructor(base: string, slots: SlotFile, metric: Metric, opts: CodeOptions, format: CodeFormat) {
    this.slotFile = slots;
    this.dim = slots.dim;
    this.metric = metric;
    this.#opts = opts;
    this.#format = format;
    this.#file = new CodesFile(`${base}.${format.name}`, format, slots.dim);
    this.#training = new CodeTraining({
      file: this.#file,
      count: () => this.trainCount,
      slotsOf: (keys) => this.slotFile.slotsOf(keys),
      fit: (sample) => this.fit(sample),
      install: (codes) => this.#swap(codes),
      encode: (slots) => this.slotFile.chunks(slots, (part, rows) => this.#store(part, this.#codes.encode(rows))),
      holder: () => this.#codes,
      readRows: (slots) => this.slotFile.readRows(slots),
      store: (slots, codes) => this.#store(slots, codes),
      slots: () => this.slotFile.slots,
      trained: () => {
        this.#trained = true;
      },
    });
    try {
      this.#rows = callNative(() => new (loadFaissBinding().SlotMap)(slots.vectorFile, slots.dim, metric));
    } catch (err) {
      this.#file.close();
      throw err;
    }
    try {
      this.#codes = this.empty();
    } catch (err) {
      this.#rows.close();
      this.#file.close();
      throw err;
    }
  }

  /** A holder with no quantiser (scores only through `exact`). */
  protected abstract empty(): NativeCodes;
  /** Trains on the vectors of `sample` (slots); a promise trains in the background (see above). */
  protected abstract fit(sample: Int32Array): Fitted | Promise<Fitted>;
  /** The holder of a header's payload. */
  protected abstract parse(payload: Buffer): NativeCodes;

  /**
   * Live items whose rows are flagged (sq8: a value clamped to its range's end; pq: a residual above the training's),
   * re-scored exactly by every rerank that meets them (freed slots are released).
   */
  clampedRows(): number {
    return this.#codes.clampedStored;
  }

  /** The format's name: sq8 or pq, the extension of the codes file. */
  get name(): string {
    return this.#format.name;
  }

  /** Code bytes per vector. */
  get codeSize(): number {
    return this.#format.codeSize;
  }

  get ntotal(): number {
    return this.slotFile.size;
  }

  get trained(): boolean {
    return this.#trained;
  }

  /** Bytes of codes in memory. */
  get codeBytes(): number {
    return this.#codes.bytes;
  }

  /** Candidates re-scored exactly per rerank (read at each one). */
  get rescore(): number {
    return this.#opts.rescore > 0 ? this.#opts.rescore : this.#format.defaultRescore;
  }

  /** Vectors held before training starts. */
  get trainCount(): number {
    return Math.max(this.#opts.trainSize, this.#format.minTrain);
  }

  /** Whether writes are encoded: trained, or a background training's quantiser is in (its held codes being written). */
  get encodes(): boolean {
    return this.#trained || this.#training.filling;
  }

  /** Whether the codes' memory is advised for transparent huge pages. */
  protected get hugePages(): boolean {
    return this.#opts.hugePages ?? true;
  }

  /** Loads the slot file's ids and the codes; throws SIDX_ERR_STORE when the codes file is torn or foreign. */
  load(): void {
    this.#training.drop();
    const trained = this.#file.size > 0;
    this.#trained = false;
    this.#rows.refresh();
    let free: Int32Array = NONE;
    this.slotFile.load((ids, freeSlots) => {
      if (!trained) this.#training.hold(ids, false);
      free = freeSlots;
    });
    if (!trained) return this.#training.startIfReady();
    const slots = this.slotFile.slots;
    this.#swap(this.parse(this.#file.readPayload(slots)));
    this.#trained = true;
    if (slots > 0) this.#readCodes(slots, free);
  }

  /**
   * While the codes `load` found are read in the background: resolves once they are in memory, rejects when they could
   * not be read (candidates are then scored exactly until the next open). Null when nothing is being read.
   */
  codesLoaded(): Promise<void> | null {
    return this.#pending === null ? null : this.#loaded;
  }

  /**
   * While a background training runs: resolves true once the codes are scored, false when a load, reset or close
   * dropped it; rejects when it failed (candidates are then scored exactly until the next load). Null when none runs.
   */
  training(): Promise<boolean> | null {
    return this.#training.running;
  }

  /**
   * Reads the codes file on the libuv pool, so that opening a large catalog does not wait for it (512 MB at 1M
   * 512-d items: seconds when it is not in the page cache). Until it is in, every candidate is scored exactly and the
   * codes written meanwhile wait in #pending (the read must not race them), put in order once it is.
   */
  #readCodes(slots: number, free: Int32Array): void {
    const codes = this.#codes;
    // The free slots' rows in the file are stale codes or zeros (never written): released first, the count then exact
    const pending: Pending[] = [{ slots: free, release: true, settle: true }];
    this.#pending = pending;
    this.#loadFailed = false;
    this.#loaded = this.#file.readInto(codes, slots).then(() => {
      if (this.#pending !== pending) return; // reset, retrained or closed meanwhile: these codes are gone
      for (const p of pending) {
        if ('codes' in p) codes.put(p.slots, p.codes);
        else codes.release(p.slots, p.settle);
      }
      this.#pending = null;
    }, (err: Error) => {
      if (this.#pending !== pending) return;
      this.#pending = null;
      this.#loadFailed = true;
      throw this.#file.error(`reading it failed (${err.message}); candidates are scored exactly until the next start`, 'SIDX_ERR_VECTOR');
    });
    this.#loaded.catch(() => undefined); // the owner asks codesLoaded() when it wants to know
  }

  /** Whether the rerank scores codes now: trained, and the codes file read in. */
  get #codesReady(): boolean {
    return this.#trained && this.#pending === null && !this.#loadFailed;
  }

  /** Empties the codes file and forgets the quantiser (a rebuild trains again). */
  reset(): void {
    this.#training.drop();
    this.#file.truncate();
    this.#rows.refresh();
    this.#swap(this.empty());
    this.#trained = false;
    this.#pending = null;
    this.#loadFailed = false;
  }

  /**
   * The codes of `vectors` encoded on the libuv pool ahead of their `add` (leave `vectors` untouched until it settles);
   * null where the codes cannot (not trained) or need not (sq8's encode is cheap) be encoded off the event loop.
   */
  prepare(vectors: Float32Array): Promise<PreparedVectors> | null {
    const codes = this.#codes;
    if (!codes.encodeAsync || !this.encodes) return null;
    return callNativeAsync(() => codes.encodeAsync!(vectors)).then((encoded) => ({ by: codes, codes: encoded }));
  }

  /**
   * After the slot file stored `ids` (their slots must exist): encodes and writes their codes (`prepared`: already
   * encoded, by the quantiser still in use).
   */
  add(vectors: Float32Array, ids: BigInt64Array, prepared?: PreparedVectors): void {
    const slots = this.slotFile.slotsOf(ids);
    if (slots.includes(-1)) throw new SidxError('SIDX_ERR_VECTOR', `${this.#format.name} store: an id has no slot in the slot file (put it there first)`);
    if (!this.encodes) return this.#training.hold(ids);
    this.#store(slots, prepared?.by === this.#codes ? prepared.codes : this.#codes.encode(vectors));
  }

  /**
   * Runs `fill` (writes of a whole catalog, e.g. a rebuild) with the training held back until it returns, so that the
   * sample is spread over everything written instead of the first batches (code-training.ts).
   */
  filling(fill: () => void): void {
    this.#training.defer(true);
    try {
      fill();
    } catch (err) {
      this.#training.defer(false, false); // a partial catalog: the next start rebuilds it
      throw err;
    }
    this.#training.defer(false);
  }

  /**
   * Slots the slot file has just freed (an item deleted, or moved to another slot; -1 entries are skipped): their codes
   * are neutralised and uncounted, once no key maps to them. Keys held for the training need nothing: a deleted one has
   * no slot when the training takes them.
   */
  releaseSlots(freed: Int32Array): void {
    const slots = freed.filter((s) => s >= 0);
    if (slots.length === 0 || !this.encodes) return;
    this.#training.released(slots);
    if (this.#pending) this.#pending.push({ slots, release: true, settle: false });
    else this.#codes.release(slots, false);
  }

  /**
   * Code scores for every candidate, exact ones for those whose rows are flagged (clampedRows) and then for the best
   * max(`rescore`, `exactTop`) (every one before training); NaN = absent.
   */
  scoreSubset(query: Float32Array, ids: BigInt64Array, exactTop = 0): Float32Array {
    checkQuery(query, this.dim);
    const slots = this.slotFile.slotsOf(ids);
    if (!this.#codesReady) return this.#exact(query, slots);
    return this.#withExact(query, slots, this.#codes.score(query, slots), exactTop);
  }

  /**
   * The codes in memory moved into an order of slots (native/src/slot_codes.h PlanLayout; the file keeps slot order, so
   * a restart reads them back unmoved), for service/code-layout.ts. `rowsOf`: each key's row in memory (-1: not stored).
   */
  readonly layout: CodeLayoutTarget & { rowsOf(keys: BigInt64Array): Int32Array } = {
    ready: () => this.#codesReady,
    slotsOf: (keys, out) => void this.slotFile.slotsOf(keys, out),
    plan: (slots) => this.#codes.planLayout(slots),
    step: (positions) => this.#codes.layoutStep(positions),
    changes: () => this.slotFile.changes,
    rowsOf: (keys) => this.#codes.rowsOf(this.slotFile.slotsOf(keys)),
  };

  /** `rankSubsetAsync` without the ranking. */
  async scoreSubsetAsync(query: Float32Array, ids: BigInt64Array, exactTop = 0): Promise<Float32Array> {
    return (await this.rankSubsetAsync(query, ids, exactTop, 0)).scores;
  }

  /**
   * `scoreSubset` off the event loop, with `top`, the best `head` positions of the scores, best first
   * (service/score-rank.ts's order): the keys' slots, their code scores, the exact re-score of the best and the ranking
   * all on the libuv pool, in one call; the event loop only starts it. When the slot file changed meanwhile (a write
   * was applied, so a key may have moved) or a key was outside the pool thread's map, the call is scored again here,
   * as `scoreSubset` scores it then (`top` absent).
   */
  async rankSubsetAsync(query: Float32Array, ids: BigInt64Array, exactTop: number, head: number): Promise<{ scores: Float32Array; top?: Int32Array }> {
    const codes = this.#codes;
    if (!this.#codesReady || !codes.rankKeysAsync) return { scores: this.scoreSubset(query, ids, exactTop) };
    checkQuery(query, this.dim);
    const scratch = takeScratch(ids.length);
    try {
      const own = scratch.keys.subarray(0, ids.length);
      own.set(ids); // the caller may reuse its array meanwhile
      const file = this.slotFile;
      const since = file.changes;
      const rows = this.#rows;
      const rescore = Math.max(this.rescore, exactTop);
      const { scores, top, unresolved } = await callNativeAsync(() => codes.rankKeysAsync!(query, own, file.denseMap, DENSE_IDS, file.slots, rows, rescore, head, this.#reads));
      if (codes !== this.#codes || file.changes !== since || unresolved > 0) return { scores: this.scoreSubset(query, own, exactTop) };
      return { scores, top };
    } finally {
      giveScratch(scratch);
    }
  }

  /**
   * `rankSubsetAsync` on the calling thread: the keys' slots, the code scores, the exact re-score and the ranking in
   * one native call, where `scoreSubset` looks each key's slot up in JS and ranks there. Scored as `scoreSubset`
   * scores (`top` absent) before training, while the codes file is read, or where a key is outside the dense map.
   */
  rankSubset(query: Float32Array, ids: BigInt64Array, exactTop: number, head: number): { scores: Float32Array; top?: Int32Array } {
    const codes = this.#codes;
    if (!this.#codesReady || !codes.rankKeys) return { scores: this.scoreSubset(query, ids, exactTop) };
    checkQuery(query, this.dim);
    const file = this.slotFile;
    const rescore = Math.max(this.rescore, exactTop);
    const { scores, top, unresolved } = callNative(() => codes.rankKeys!(query, ids, file.denseMap, DENSE_IDS, file.slots, this.#rows, rescore, head, this.#reads));
    return unresolved > 0 ? { scores: this.scoreSubset(query, ids, exactTop) } : { scores, top };
  }

  /** The exact re-scores of `scoreSubset` (code-ranking.ts withExact). */
  #withExact(query: Float32Array, slots: Int32Array, scores: Float32Array, exactTop: number): Float32Array {
    const clamped = this.#codes.clampedAt(slots);
    const count = Math.max(this.rescore, exactTop);
    return withExact(scores, clamped, count, this.metric === 'ip' ? 1 : -1, (positions) => this.#exact(query, positions.map((p) => slots[p]!)));
  }

  /** Everything written before the call is durable when it resolves (libuv pool). */
  datasync(): Promise<void> {
    return this.#file.datasync();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#training.drop();
    this.#pending = null;
    this.#codes.close();
    this.#rows.close();
    this.#file.close();
  }

  /** Exact scores of the slots' rows (NaN for -1), through the mapping or pread (CodeFormat.rescoreFrom). */
  #exact(query: Float32Array, slots: Int32Array): Float32Array {
    const rows = this.#rows;
    return callNative(() => (this.#reads ? rows.readScoreSlots(query, slots) : rows.scoreSlots(query, slots)));
  }

  /** Whether exact scores read their rows by pread (CodeFormat.rescoreFrom). */
  get #reads(): boolean {
    return this.#format.rescoreFrom === 'read';
  }

  /** Writes codes (row i for slots[i]) to the file, one write per run of consecutive slots, and to memory. */
  #store(slots: Int32Array, codes: Uint8Array): void {
    this.#file.write(slots, codes);
    if (this.#pending) this.#pending.push({ slots: slots.slice(), codes });
    else this.#codes.put(slots, codes);
  }

  #swap(codes: NativeCodes): void {
    this.#codes.close();
    this.#codes = codes;
  }
}
