/** The `changes` database: seq (u64 BE) -> op (u8: 1 upsert, 2 delete) ++ internal key (u64 BE). */
import type { Database } from 'lmdb';
import { SidxError } from '../errors.ts';
import { META_LAST_SEQ, META_TRUNCATED, readMetaU64 } from './catalog-meta.ts';
import { readU64BE, u64Key, U64_BYTES, writeU64BE } from './keys.ts';

export interface Change {
  seq: bigint;
  op: 'upsert' | 'delete';
  key: bigint;
}

export const OP_UPSERT = 1;
export const OP_DELETE = 2;
const TRUNCATE_CHUNK = 4096;

type Bin = Database<Buffer, Buffer>;

/** Appends entries inside a write transaction, reusing one key and one value buffer (lmdb copies on put). */
export class ChangeWriter {
  #db: Bin;
  #key = Buffer.allocUnsafe(U64_BYTES);
  #value = Buffer.allocUnsafe(1 + U64_BYTES);

  constructor(db: Bin) {
    this.#db = db;
  }

  append(seq: bigint, op: number, internalKey: Uint8Array): void {
    writeU64BE(this.#key, 0, seq);
    this.#value[0] = op;
    this.#value.set(internalKey, 1);
    this.#db.put(this.#key, this.#value);
  }
}

export function* iterateChanges(db: Bin, afterSeq: bigint): Generator<Change> {
  for (const { key, value } of db.getRange({ start: u64Key(afterSeq + 1n) })) {
    yield { seq: readU64BE(key, 0), op: value[0] === OP_DELETE ? 'delete' : 'upsert', key: readU64BE(value, 1) };
  }
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

/** Removes entries with seq <= upto; call inside a write transaction. */
export function removeChangesUpTo(db: Bin, upto: bigint): void {
  const end = u64Key(upto + 1n);
  for (;;) {
    // Materialise each chunk before removing: no deletes under a live cursor.
    const chunk = Array.from(db.getKeys({ end, limit: TRUNCATE_CHUNK }));
    for (const k of chunk) db.remove(k);
    if (chunk.length < TRUNCATE_CHUNK) return;
  }
}
