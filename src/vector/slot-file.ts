/**
 * The vector store's files on disk, kept up to date in place: one fixed-size slot per vector, written when the
 * vector changes, so persisting them never rewrites them whole (a FAISS checkpoint did: seconds under the write
 * lock at 1M items). The vectors are read in place through a shared read-only mapping of `<base>.slots`
 * (vector-store.ts); opening reads the id file only (8 bytes per slot).
 *
 *   <base>.slots  slot s at byte s * 4 * dim: the vector, dim x float32 LE
 *   <base>.ids    slot s at byte s * 8: its id, int64 LE; -1 = a free slot
 *
 * Writes go to the page cache straight from the caller's arrays (`put`, `remove`: one write per run of consecutive
 * slots, so appends are two writes per batch); `datasync` makes everything written before it durable, off the event
 * loop. The files are derived state: their owner (service/vector-state.ts) records up to which catalog change they
 * are durable and repairs what came after from the catalog's change log.
 */
import { closeSync, constants, fdatasync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { SidxError } from '../errors.ts';

const FREE = -1;
const ID_BYTES = 8;
/** Ids below this live in a typed array (internal keys are a counter from 1); larger ones in a Map. */
const DENSE_IDS = 1 << 28;

export class SlotFile {
  readonly dim: number;
  #vectorsFd: number;
  #idsFd: number;
  /** Slots in the files, free ones included. */
  #slots = 0;
  #occupied = 0;
  /** id -> slot + 1 (0 = absent) for ids < DENSE_IDS. */
  #dense = new Int32Array(1024);
  #sparse = new Map<bigint, number>();
  #free: number[] = [];
  #freeMark = new Uint8Array(ID_BYTES).fill(0xff);

  private constructor(vectorsFd: number, idsFd: number, dim: number) {
    this.#vectorsFd = vectorsFd;
    this.#idsFd = idsFd;
    this.dim = dim;
  }

  /** Opens (creating them if missing) `<base>.slots` and `<base>.ids` for `dim`-d vectors; call `load` or `reset` next. */
  static open(base: string, dim: number): SlotFile {
    if (!Number.isSafeInteger(dim) || dim < 1) throw new SidxError('SIDX_ERR_INVALID_INPUT', `dim must be a positive integer, got ${dim}`, { field: 'dim' });
    const flags = constants.O_RDWR | constants.O_CREAT;
    const vectorsFd = openSync(`${base}.slots`, flags, 0o644);
    return new SlotFile(vectorsFd, openSync(`${base}.ids`, flags, 0o644), dim);
  }

  /** Opens the slot file at `base` and builds its owner with it; the file is closed again when that throws. */
  static with<T>(base: string, dim: number, owner: (file: SlotFile) => T): T {
    const file = SlotFile.open(base, dim);
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
   * Reads the id file and rebuilds the id -> slot map and the free list (the vectors are not read: they are scored in
   * place through the mapping, vector-store.ts). Slots beyond the shorter of the two files (a write cut short) are
   * cut off. Throws SIDX_ERR_STORE on an id stored twice (the files cannot be trusted). `onIds` gets the stored ids.
   */
  load(onIds?: (ids: BigInt64Array) => void): void {
    this.#clearMaps();
    const rowBytes = 4 * this.dim;
    const slots = Math.min(Math.floor(fstatSync(this.#idsFd).size / ID_BYTES), Math.floor(fstatSync(this.#vectorsFd).size / rowBytes));
    ftruncateSync(this.#idsFd, slots * ID_BYTES);
    ftruncateSync(this.#vectorsFd, slots * rowBytes);
    const ids = new BigInt64Array(slots);
    readFully(this.#idsFd, new Uint8Array(ids.buffer), slots * ID_BYTES, 0);
    const words = new Int32Array(ids.buffer);
    for (let s = 0; s < slots; s++) {
      const lo = words[2 * s]!;
      const hi = words[2 * s + 1]!;
      if (lo === FREE && hi === FREE) {
        this.#free.push(s);
        continue;
      }
      if (this.#slotOf(lo, hi, ids, s) !== 0) throw new SidxError('SIDX_ERR_STORE', `vector slot file: id ${ids[s]} is stored twice`);
      this.#setSlot(lo, hi, ids, s, s + 1);
      this.#occupied++;
    }
    this.#slots = slots;
    this.#free.reverse(); // lowest free slot first
    if (onIds) onIds(ids.filter((_id, s) => words[2 * s] !== FREE || words[2 * s + 1] !== FREE));
  }

  /** Slots in the files, free ones included. */
  get slots(): number {
    return this.#slots;
  }

  /** The slot of each id into `out` (allocated when not given), -1 for an id not stored. */
  slotsOf(ids: BigInt64Array, out = new Int32Array(ids.length)): Int32Array {
    const words = new Int32Array(ids.buffer, ids.byteOffset, ids.length * 2);
    for (let i = 0; i < ids.length; i++) out[i] = this.#slotOf(words[2 * i]!, words[2 * i + 1]!, ids, i) - 1;
    return out;
  }

  /** Reads the vector of slots[i] into row i of `into` (one pread per run of consecutive slots). */
  readSlots(slots: Int32Array, into: Float32Array): void {
    const rowBytes = 4 * this.dim;
    const bytes = new Uint8Array(into.buffer, into.byteOffset, slots.length * rowBytes);
    let run = 0;
    for (let i = 1; i <= slots.length; i++) {
      if (i < slots.length && slots[i] === slots[i - 1]! + 1) continue;
      readFully(this.#vectorsFd, bytes.subarray(run * rowBytes), (i - run) * rowBytes, slots[run]! * rowBytes);
      run = i;
    }
  }

  /** Empties the files. */
  reset(): void {
    ftruncateSync(this.#idsFd, 0);
    ftruncateSync(this.#vectorsFd, 0);
    this.#clearMaps();
    this.#slots = 0;
  }

  has(id: bigint): boolean {
    return this.#lookup(id) !== 0;
  }

  /** Writes the vectors of `ids` (row i of `vectors` for ids[i]): in place for a stored id, else into a free slot. */
  put(ids: BigInt64Array, vectors: Float32Array): void {
    const dim = this.dim;
    if (vectors.length !== ids.length * dim) throw new SidxError('SIDX_ERR_DIMENSION', `${ids.length} ids but ${vectors.length / dim} vectors`, { field: 'vectors' });
    const words = new Int32Array(ids.buffer, ids.byteOffset, ids.length * 2);
    const idBytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
    const vectorBytes = new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength);
    // Rows whose slots are consecutive are written with one call per file, straight from the caller's arrays.
    let runRow = 0;
    let runSlot = -1;
    for (let i = 0; i <= ids.length; i++) {
      const slot = i < ids.length ? this.#slotFor(words[2 * i]!, words[2 * i + 1]!, ids, i) : -1;
      if (runSlot >= 0 && slot === runSlot + (i - runRow)) continue;
      if (runSlot >= 0) {
        writeFully(this.#idsFd, idBytes.subarray(runRow * ID_BYTES, i * ID_BYTES), runSlot * ID_BYTES);
        writeFully(this.#vectorsFd, vectorBytes.subarray(runRow * 4 * dim, i * 4 * dim), runSlot * 4 * dim);
      }
      runRow = i;
      runSlot = slot;
    }
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
      this.#free.push(slot);
      this.#occupied--;
      removed++;
    }
    return removed;
  }

  /** Everything written before the call is durable when it resolves; runs on the libuv pool. */
  async datasync(): Promise<void> {
    await Promise.all([this.#vectorsFd, this.#idsFd].map((fd) => new Promise<void>((resolve, reject) => {
      fdatasync(fd, (err) => (err ? reject(new SidxError('SIDX_ERR_VECTOR', `vector slot file: fdatasync failed: ${err.message}`)) : resolve()));
    })));
  }

  close(): void {
    if (this.#idsFd < 0) return;
    closeSync(this.#idsFd);
    closeSync(this.#vectorsFd);
    this.#idsFd = this.#vectorsFd = -1;
  }

  /** The slot of ids[i] (words lo, hi), allocated (lowest free first, else appended) if it has none. */
  #slotFor(lo: number, hi: number, ids: BigInt64Array, i: number): number {
    const known = this.#slotOf(lo, hi, ids, i);
    if (known !== 0) return known - 1;
    const slot = this.#free.length > 0 ? this.#free.pop()! : this.#slots++;
    this.#setSlot(lo, hi, ids, i, slot + 1);
    this.#occupied++;
    return slot;
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
    this.#dense = new Int32Array(1024);
    this.#sparse.clear();
    this.#free = [];
    this.#occupied = 0;
  }
}

export function readFully(fd: number, into: Uint8Array, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const got = readSync(fd, into, done, length - done, position + done);
    if (got === 0) throw new SidxError('SIDX_ERR_STORE', 'vector slot file: shorter than its size');
    done += got;
  }
}

export function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
