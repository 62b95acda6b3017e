/**
 * Which row of the catalog's vector file (vector/vector-file.ts, `vectors.f32`: the only copy of each vector) holds
 * each key's vector, for the rerank: an in-memory key -> row map, persisted in `<base>.ids` so that a restart reads
 * 8 bytes per row instead of every item record.
 *
 *   <base>.ids    row s at byte s * 8: the key whose vector it holds, int64 LE; -1 = no key (free, or not yet known)
 *
 * The rows themselves are chosen by the catalog (catalog-vectors.ts: copy-on-write, a re-upsert gets a new row);
 * `assign` follows its commits. The id file is derived state: its owner (service/vector-state.ts) records up to
 * which catalog change it is durable (`datasync`) and repairs what came after from the records.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { SidxError } from '../errors.ts';
import { fdatasyncAsync, readFully, VectorFile, writeFully } from './vector-file.ts';

const FREE = -1;
/** Slots per chunk (SlotFile.chunks; 16,384 x 512-d: 32 MiB of floats). */
const CHUNK_SLOTS = 16_384;
const ID_BYTES = 8;
/** Ids below this live in a typed array (internal keys are a counter from 1; `denseMap`), larger ones in a Map. */
export const DENSE_IDS = 1 << 28;

export class SlotFile {
  readonly dim: number;
  #vectors: VectorFile;
  #idsFd: number;
  /** Rows the id file covers, free ones included. */
  #slots = 0;
  #occupied = 0;
  /** id -> slot + 1 (0 = absent) for ids < DENSE_IDS. */
  #dense = new Int32Array(1024);
  #sparse = new Map<bigint, number>();
  #freeMark = new Uint8Array(ID_BYTES).fill(0xff);
  #changes = 0;

  private constructor(vectors: VectorFile, idsFd: number) {
    this.#vectors = vectors;
    this.#idsFd = idsFd;
    this.dim = vectors.dim;
  }

  /** Opens (creating it if missing) `<base>.ids` for the `dim`-d rows of `vectorFile`; call `load` or `reset` next. */
  static open(base: string, dim: number, vectorFile: string): SlotFile {
    const vectors = VectorFile.open(vectorFile, dim);
    return new SlotFile(vectors, openSync(`${base}.ids`, constants.O_RDWR | constants.O_CREAT, 0o644));
  }

  /** Path of the vector file the rows are in. */
  get vectorFile(): string {
    return this.#vectors.path;
  }

  /** Opens the id file at `base` and builds its owner with it; the file is closed again when that throws. */
  static with<T>(base: string, dim: number, vectorFile: string, owner: (file: SlotFile) => T): T {
    const file = SlotFile.open(base, dim, vectorFile);
    try {
      return owner(file);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Occupied slots. */
  get size(): number {
    return this.#occupied;
  }

  /**
   * Reads the id file and rebuilds the key -> row map (no vector is read: they are scored in place through the
   * mapping, vector-store.ts). A torn last entry is cut off. Throws SIDX_ERR_STORE on a key stored twice (the file
   * cannot be trusted). `onIds` gets the stored keys, and the slots below `slots` that hold none (free, or never given one).
   */
  load(onIds?: (ids: BigInt64Array, free: Int32Array) => void): void {
    this.#clearMaps();
    const slots = Math.floor(fstatSync(this.#idsFd).size / ID_BYTES);
    ftruncateSync(this.#idsFd, slots * ID_BYTES);
    const ids = new BigInt64Array(slots);
    readFully(this.#idsFd, new Uint8Array(ids.buffer), 0);
    const words = new Int32Array(ids.buffer);
    const free: number[] = [];
    for (let s = 0; s < slots; s++) {
      const lo = words[2 * s]!;
      const hi = words[2 * s + 1]!;
      if (lo === FREE && hi === FREE) {
        free.push(s);
        continue;
      }
      if (this.#slotOf(lo, hi, ids, s) !== 0) throw new SidxError('SIDX_ERR_STORE', `vector id file: key ${ids[s]} is stored twice`);
      this.#setSlot(lo, hi, ids, s, s + 1);
      this.#occupied++;
    }
    this.#slots = slots;
    if (onIds) onIds(ids.filter((_id, s) => words[2 * s] !== FREE || words[2 * s + 1] !== FREE), Int32Array.from(free));
  }

  /** Calls `each(part, rows)` over `slots` CHUNK_SLOTS at a time (training, loading), `rows` read from the vector file. */
  chunks(slots: Int32Array, each: (part: Int32Array, rows: Float32Array) => void): void {
    const rows = new Float32Array(Math.min(slots.length, CHUNK_SLOTS) * this.dim);
    for (let first = 0; first < slots.length; first += CHUNK_SLOTS) {
      const part = slots.subarray(first, first + CHUNK_SLOTS);
      const view = rows.subarray(0, part.length * this.dim);
      this.readSlots(part, view);
      each(part, view);
    }
  }

  /** Grows whenever some id's slot changes (assign, remove, reset, load): an equal count means an unchanged mapping. */
  get changes(): number {
    return this.#changes;
  }

  /** Rows the id file covers, free ones included. */
  get slots(): number {
    return this.#slots;
  }

  /**
   * The slot of key k (+ 1; 0 = none) at index k, for keys below its length; other keys are found another way
   * (`slotsOf`). Read-only for callers: a pool thread resolves a rerank's keys through it (code-store.ts); growing
   * replaces the array, so a reader holding an older one notices through `changes`.
   */
  get denseMap(): Int32Array {
    return this.#dense;
  }

  /** The slot of each id into `out` (allocated when not given), -1 for an id not stored. */
  slotsOf(ids: BigInt64Array, out: Int32Array = new Int32Array(ids.length)): Int32Array {
    const words = new Int32Array(ids.buffer, ids.byteOffset, ids.length * 2);
    for (let i = 0; i < ids.length; i++) out[i] = this.#slotOf(words[2 * i]!, words[2 * i + 1]!, ids, i) - 1;
    return out;
  }

  /** Reads the vector of slots[i] into row i of `into` (one pread per run of consecutive rows). */
  readSlots(slots: Int32Array, into: Float32Array): void {
    this.#vectors.read(slots, into);
  }

  /** The rows of `slots` in a new array. */
  readRows(slots: Int32Array): Float32Array {
    const rows = new Float32Array(slots.length * this.dim);
    this.readSlots(slots, rows);
    return rows;
  }

  /** Forgets every key (the vector file is the catalog's and stays). */
  reset(): void {
    ftruncateSync(this.#idsFd, 0);
    this.#clearMaps();
    this.#slots = 0;
  }

  has(id: bigint): boolean {
    return this.#lookup(id) !== 0;
  }

  /** ids[i]'s vector is now in row slots[i] (a committed catalog write): the map and the id file follow. */
  assign(ids: BigInt64Array, slots: Uint32Array): void {
    const words = new Int32Array(ids.buffer, ids.byteOffset, ids.length * 2);
    const idBytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
    // Rows of consecutive ids whose slots are consecutive are written with one call.
    let run = -1;
    const flush = (end: number) => {
      if (run >= 0) this.#writeIds(idBytes.subarray(run * ID_BYTES, end * ID_BYTES), slots[run]!);
      run = -1;
    };
    for (let i = 0; i < ids.length; i++) {
      const lo = words[2 * i]!;
      const hi = words[2 * i + 1]!;
      const old = this.#slotOf(lo, hi, ids, i) - 1;
      if (old === slots[i]) {
        flush(i);
        continue;
      }
      if (old >= 0) writeFully(this.#idsFd, this.#freeMark, old * ID_BYTES);
      else this.#occupied++;
      this.#changes++;
      this.#setSlot(lo, hi, ids, i, slots[i]! + 1);
      if (run >= 0 && slots[i] !== slots[i - 1]! + 1) flush(i);
      if (run < 0) run = i;
    }
    flush(ids.length);
  }

  /** The ids of consecutive rows from `first`; rows between the file's end and `first` are marked free. */
  #writeIds(bytes: Uint8Array, first: number): void {
    if (first > this.#slots) writeFully(this.#idsFd, new Uint8Array((first - this.#slots) * ID_BYTES).fill(0xff), this.#slots * ID_BYTES);
    writeFully(this.#idsFd, bytes, first * ID_BYTES);
    this.#slots = Math.max(this.#slots, first + bytes.length / ID_BYTES);
  }

  /** Frees the slots of `ids`; ids not stored are ignored. Returns how many were stored. */
  remove(ids: BigInt64Array): number {
    const words = new Int32Array(ids.buffer, ids.byteOffset, ids.length * 2);
    let removed = 0;
    for (let i = 0; i < ids.length; i++) {
      const lo = words[2 * i]!;
      const hi = words[2 * i + 1]!;
      const slot = this.#slotOf(lo, hi, ids, i) - 1;
      if (slot < 0) continue;
      writeFully(this.#idsFd, this.#freeMark, slot * ID_BYTES);
      this.#setSlot(lo, hi, ids, i, 0);
      this.#changes++;
      this.#occupied--;
      removed++;
    }
    return removed;
  }

  /** Everything written before the call is durable when it resolves; runs on the libuv pool. */
  async datasync(): Promise<void> {
    await fdatasyncAsync(this.#idsFd).catch((err: Error) => {
      throw new SidxError('SIDX_ERR_VECTOR', `vector id file: fdatasync failed: ${err.message}`);
    });
  }

  close(): void {
    if (this.#idsFd < 0) return;
    closeSync(this.#idsFd);
    this.#vectors.close();
    this.#idsFd = -1;
  }

  #lookup(id: bigint): number {
    const one = BigInt64Array.of(id);
    const words = new Int32Array(one.buffer);
    return this.#slotOf(words[0]!, words[1]!, one, 0);
  }

  /** Slot + 1 of the id whose int32 words are lo, hi (ids[i], read as a bigint only off the dense path); 0 = none. */
  #slotOf(lo: number, hi: number, ids: BigInt64Array, i: number): number {
    if (hi === 0 && lo >= 0 && lo < DENSE_IDS) return lo < this.#dense.length ? this.#dense[lo]! : 0;
    return this.#sparse.get(ids[i]!) ?? 0;
  }

  #setSlot(lo: number, hi: number, ids: BigInt64Array, i: number, slotPlusOne: number): void {
    if (hi === 0 && lo >= 0 && lo < DENSE_IDS) {
      if (lo >= this.#dense.length) {
        const grown = new Int32Array(Math.min(DENSE_IDS, Math.max(lo + 1, this.#dense.length * 2)));
        grown.set(this.#dense);
        this.#dense = grown;
      }
      this.#dense[lo] = slotPlusOne;
    } else if (slotPlusOne === 0) this.#sparse.delete(ids[i]!);
    else this.#sparse.set(ids[i]!, slotPlusOne);
  }

  #clearMaps(): void {
    this.#changes++;
    this.#dense = new Int32Array(1024);
    this.#sparse.clear();
    this.#occupied = 0;
  }
}

/**
 * After scores of `own`'s rows at `slots` were computed off the event loop (slots resolved when `file.changes` was
 * `since`): rows are copy-on-write, so a key upserted or deleted meanwhile has another row now, or none, and its old
 * row may have been reused. Those keys get `rescore`'s scores of their rows of now (NaN when gone). Returns their
 * positions.
 */
export function rescoreMoved(file: SlotFile, own: BigInt64Array, slots: Int32Array, since: number, scores: Float32Array,
  rescore: (slots: Int32Array) => Float32Array): number[] {
  if (file.changes === since) return [];
  const now = file.slotsOf(own);
  const changed: number[] = [];
  for (let i = 0; i < now.length; i++) if (now[i] !== slots[i]) changed.push(i);
  if (changed.length > 0) {
    const fresh = rescore(Int32Array.from(changed, (i) => now[i]!));
    changed.forEach((i, j) => { scores[i] = fresh[j]!; });
  }
  return changed;
}
