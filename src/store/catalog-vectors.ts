/**
 * Where the catalog keeps its vectors (schema 4): rows of `vectors.f32` (vector-file.ts), named by a slot in each
 * item record; which rows are free lives in LMDB with the records, so one transaction moves both.
 *
 *   freeSlots  slot (u32 BE) -> empty: rows below nextSlot that no committed record names
 *   meta       nextSlot (u64): rows at and past it were never committed
 *
 * Write order of a batch (upsertBatch), which is why an acknowledged write survives kill -9 and no committed record
 * ever names an unwritten row:
 *   1. `reserve`: every item, new or re-upserted, gets a row no committed record names (copy-on-write: a re-upsert
 *      never overwrites the row its current record names): the lowest free ones, then from nextSlot;
 *   2. `persist`: write the vectors there and fdatasync the file (`stage` does 1 and 2 on the libuv pool, before the
 *      batch is encoded: the service's upserts);
 *   3. the LMDB transaction writes the records naming those rows, takes them off the free list, moves nextSlot
 *      (`commit`), and frees the rows of the replaced and deleted items' records (`free`); LMDB syncs it.
 * A crash before 3 leaves rows that no record names and that are free or at and past nextSlot; after 3 the rows were
 * durable first.
 */
import type { Database } from 'lmdb';
import { join } from 'node:path';
import { SidxError } from '../errors.ts';
import { InFlight } from '../in-flight.ts';
import { readMetaU64 } from './catalog-meta.ts';
import { u64Key } from './keys.ts';
import { MAX_SLOT } from './record.ts';
import { VECTOR_FILE, VectorFile } from '../vector/vector-file.ts';

type Bin = Database<Buffer, Buffer>;

export const META_NEXT_SLOT = Buffer.from('nextSlot');
const EMPTY = Buffer.alloc(0);

export interface SlotReservation {
  slots: Uint32Array;
  /** slots[0..fromFree) came off the free list. */
  fromFree: number;
  /** nextSlot once committed. */
  next: number;
}

/** A batch's vectors written ahead of its transaction (`CatalogVectors.stage`). */
export interface StagedRows {
  dim: number;
  /** Row i goes to reserved.slots[i]; must not change until `written` settles. */
  vectors: Float32Array;
  reserved: SlotReservation;
  /** Resolves once the rows are on disk; the caller must await it (or attach a handler) before it can reject unseen. */
  written: Promise<void>;
  /** Lets other batches take the rows once `written` has settled: call it when the batch committed, failed, or will not be written. */
  release(): Promise<void>;
}

export function slotKey(slot: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(slot, 0);
  return b;
}

export class CatalogVectors {
  readonly path: string;
  #free: Bin;
  #meta: Bin;
  #file: VectorFile | null = null;
  #held = new Set<SlotReservation>();
  #writing = new InFlight();

  constructor(dir: string, free: Bin, meta: Bin) {
    this.path = join(dir, VECTOR_FILE);
    this.#free = free;
    this.#meta = meta;
  }

  /** The vector file of `dim`-d rows, opened on first use. */
  file(dim: number): VectorFile {
    if (!this.#file) this.#file = VectorFile.open(this.path, dim);
    else if (this.#file.dim !== dim) throw new SidxError('SIDX_ERR_DIMENSION', `the vector file holds ${this.#file.dim}-d rows, asked for ${dim}`);
    return this.#file;
  }

  /**
   * Rows for `n` vectors that no committed record names and no other held reservation took (step 1 above); read
   * outside the write transaction. Held until `release`d, after its batch committed or failed: a pipelined batch
   * reserves while the one before it commits (catalog-txns.ts), and a staged one before it is encoded, so batches
   * commit in any order (`commit` keeps every row below nextSlot named, free or held).
   */
  reserve(n: number): SlotReservation {
    const slots = new Uint32Array(n);
    let k = 0;
    const held = new Set<number>();
    let next = Number(readMetaU64(this.#meta, META_NEXT_SLOT));
    for (const r of this.#held) {
      for (const slot of r.slots) held.add(slot);
      next = Math.max(next, r.next);
    }
    if (n > 0) {
      for (const { key } of this.#free.getRange({ limit: n + held.size })) {
        const slot = key.readUInt32BE(0);
        if (!held.has(slot)) slots[k++] = slot;
        if (k === n) break;
      }
    }
    const fromFree = k;
    if (next + (n - k) - 1 > MAX_SLOT) throw new SidxError('SIDX_ERR_STORE', `vector slots exhausted (${MAX_SLOT + 1} rows)`);
    while (k < n) slots[k++] = next++;
    const reservation = { slots, fromFree, next };
    this.#held.add(reservation);
    return reservation;
  }

  release(r: SlotReservation): void {
    this.#held.delete(r);
  }

  /** Step 2: the vectors (row i for slots[i]) on disk. */
  persist(dim: number, slots: Uint32Array, vectors: Float32Array): void {
    const file = this.file(dim);
    file.write(slots, vectors);
    file.datasync();
  }

  /**
   * Steps 1 and 2 ahead of the batch's transaction: rows reserved and `vectors` written there and synced on the libuv
   * pool while the caller does other work (an upsert encodes meanwhile). `written` settles once they are on disk or
   * failed; the rows stay held until `release`d. `close` waits for writes in flight.
   */
  stage(dim: number, vectors: Float32Array): StagedRows {
    const file = this.file(dim);
    const reserved = this.reserve(vectors.length / dim);
    const written = file.writeAsync(reserved.slots, vectors).then(() => file.datasyncAsync());
    this.#writing.track(written);
    const release = () => written.then(() => this.release(reserved), () => this.release(reserved));
    return { dim, vectors, reserved, written, release };
  }

  /**
   * Step 3, inside the write transaction: the reserved rows are taken off the free list. Batches staged ahead commit
   * in lock order, not in reservation order, so nextSlot only grows, and the rows it passes that are not this batch's
   * (held by a batch reserved earlier and not committed yet, or by none) go on the free list: after a crash every row
   * below nextSlot is named by a record or free. Such a batch takes its rows off the free list when it commits.
   */
  commit(r: SlotReservation): void {
    const next = Number(readMetaU64(this.#meta, META_NEXT_SLOT));
    for (const slot of r.slots) if (slot < next) this.#free.remove(slotKey(slot));
    if (r.next <= next) return;
    const own = r.next - (r.slots.length - r.fromFree); // this batch's rows from nextSlot: own .. r.next - 1
    for (let slot = next; slot < own; slot++) this.#free.put(slotKey(slot), EMPTY);
    this.#meta.put(META_NEXT_SLOT, u64Key(BigInt(r.next)));
  }

  /** Inside the write transaction: rows whose records are replaced or deleted in it become free once it commits. */
  free(slot: number): void {
    if (slot >= 0) this.#free.put(slotKey(slot), EMPTY);
  }

  /** The vectors of `slots` (slots.length x dim). */
  read(dim: number, slots: ArrayLike<number>): Float32Array {
    return this.file(dim).read(slots);
  }

  /** Resolves once no staged write is in flight. */
  settled(): Promise<void> {
    return this.#writing.all();
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}
