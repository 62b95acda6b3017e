/**
 * The `changes` database (schema 6): one entry per write transaction that changes items, its first seq (u64 BE) ->
 * its changes, seqs first, first + 1, ...: n x (op (u8: 1 upsert, 2 delete) ++ internal key (u64 BE)). A schema-5
 * catalog's entries, one per change, are such packs of one. Truncation removes whole packs: one that straddles the
 * truncated seq stays, and readers skip its changes up to that seq.
 */
import type { Database } from 'lmdb';
import { SidxError } from '../errors.ts';
import { META_LAST_SEQ, META_TRUNCATED, readMetaU64 } from './catalog-meta.ts';
import { readU64BE, u64Key, U64_BYTES } from './keys.ts';

export interface Change {
  seq: bigint;
  op: 'upsert' | 'delete';
  key: bigint;
}

export const OP_UPSERT = 1;
export const OP_DELETE = 2;
const TRUNCATE_CHUNK = 4096;

type Bin = Database<Buffer, Buffer>;

const ENTRY_BYTES = 1 + U64_BYTES;

/** Collects one transaction's changes (consecutive seqs); `flush`, inside the transaction, writes them as one entry. */
export class ChangeWriter {
  #db: Bin;
  #first = 0n;
  #count = 0;
  #value: Buffer;

  constructor(db: Bin, capacity: number) {
    this.#db = db;
    this.#value = Buffer.allocUnsafe(Math.max(1, capacity) * ENTRY_BYTES);
  }

  append(seq: bigint, op: number, internalKey: Uint8Array): void {
    if (this.#count === 0) this.#first = seq;
    else if (seq !== this.#first + BigInt(this.#count)) throw new SidxError('SIDX_ERR_STORE', `change ${seq} does not follow ${this.#first + BigInt(this.#count) - 1n}`);
    if ((this.#count + 1) * ENTRY_BYTES > this.#value.length) {
      const grown = Buffer.allocUnsafe(2 * this.#value.length);
      this.#value.copy(grown);
      this.#value = grown;
    }
    const at = this.#count * ENTRY_BYTES;
    this.#value[at] = op;
    this.#value.set(internalKey, at + 1);
    this.#count++;
  }

  /** Writes the changes appended so far (nothing when there are none); lmdb-js copies the value on put. */
  flush(): void {
    if (this.#count === 0) return;
    this.#db.put(u64Key(this.#first), this.#value.subarray(0, this.#count * ENTRY_BYTES));
    this.#count = 0;
  }
}

/** The entry holding `seq` may start before it: the last key <= seq, else seq itself. */
function packStart(db: Bin, seq: bigint): Buffer {
  const at = u64Key(seq);
  for (const key of db.getKeys({ start: at, reverse: true, limit: 1 })) return Buffer.from(key);
  return at;
}

export function* iterateChanges(db: Bin, afterSeq: bigint): Generator<Change> {
  for (const { key, value } of db.getRange({ start: packStart(db, afterSeq + 1n) })) {
    // Copied: the caller may read the catalog between changes.
    for (const c of packChanges(key, Buffer.from(value))) {
      if (c.seq > afterSeq) yield { seq: c.seq, op: c.op === OP_DELETE ? 'delete' : 'upsert', key: c.key };
    }
  }
}

/** The changes of the entry stored under `key` with `value`, in seq order; `op` as stored. */
export function* packChanges(key: Uint8Array, value: Uint8Array): Generator<{ seq: bigint; op: number; key: bigint }> {
  let seq = readU64BE(key, 0);
  for (let at = 0; at + ENTRY_BYTES <= value.length; at += ENTRY_BYTES) yield { seq: seq++, op: value[at]!, key: readU64BE(value, at + 1) };
}

/** The last seq of the entry stored under `key` with `value`. */
export function packLast(key: Uint8Array, value: Uint8Array): bigint {
  return readU64BE(key, 0) + BigInt(Math.floor(value.length / ENTRY_BYTES) - 1);
}

/** Whether an entry's value is a pack of well-formed changes. */
export function wellFormedPack(value: Uint8Array): boolean {
  if (value.length === 0 || value.length % ENTRY_BYTES !== 0) return false;
  for (let at = 0; at < value.length; at += ENTRY_BYTES) if (value[at] !== OP_UPSERT && value[at] !== OP_DELETE) return false;
  return true;
}

/** Entries with seq > `seq`, ascending; throws if entries after `seq` were already truncated. */
export function changesAfter(db: Bin, meta: Bin, seq: bigint): Generator<Change> {
  if (typeof seq !== 'bigint' || seq < 0n) throw new SidxError('SIDX_ERR_INVALID_INPUT', 'seq must be a non-negative bigint', { field: 'seq' });
  const truncated = readMetaU64(meta, META_TRUNCATED);
  if (seq < truncated) {
    throw new SidxError('SIDX_ERR_STORE', `change log is truncated up to seq ${truncated}, cannot replay from ${seq}; rebuild from items()`);
  }
  return iterateChanges(db, seq);
}

/** Removes entries with seq <= min(upto, lastSeq) and records the truncation in meta; inside a write transaction. */
export function truncateChangesTxn(db: Bin, meta: Bin, uptoSeq: bigint): void {
  const last = readMetaU64(meta, META_LAST_SEQ);
  const upto = uptoSeq < last ? uptoSeq : last;
  if (upto <= readMetaU64(meta, META_TRUNCATED)) return;
  removeChangesUpTo(db, upto);
  meta.put(META_TRUNCATED, u64Key(upto));
}

/** Removes the entries whose changes all have seq <= upto (one that straddles it stays); inside a write transaction. */
export function removeChangesUpTo(db: Bin, upto: bigint): void {
  const end = u64Key(upto + 1n);
  for (;;) {
    // Materialise each chunk before removing: no deletes under a live cursor.
    const chunk = Array.from(db.getRange({ end, limit: TRUNCATE_CHUNK }), ({ key, value }) => ({ key: Buffer.from(key), last: packLast(key, value) }));
    for (const { key, last } of chunk) {
      if (last > upto) return;
      db.remove(key);
    }
    if (chunk.length < TRUNCATE_CHUNK) return;
  }
}
