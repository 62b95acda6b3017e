/**
 * The SID log (catalog schema 7): each write transaction's item-count changes per SID, one packed entry per model,
 * appended in the transaction that wrote the postings, so that a client holding a model's trie as of seq S can be
 * told which SIDs became occupied or empty since (sid-occupancy.ts):
 *
 *   sidLog  seq (u64 BE) ++ model (u16 BE) -> L (u8) ++ n x (codes: L x u16 BE, change: i32 BE)
 *
 * meta: `sidLogFloor` (u64): entries with seq <= it were trimmed; `sidFloor/<model>` (u64): a delta for that model
 * needs since >= it (set when a key space is dropped, whose removals are not logged).
 *
 * One append per transaction and model, at the end of the B-tree: schema 3 to 6 logged each SID that turned
 * occupied or empty under its own key and kept every SID's count in `sidCounts`, two B-tree writes per item, one of
 * them at a random place (a fifth of a 1M-item ingest's time).
 */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { readMetaU64 } from './catalog-meta.ts';
import { readU64BE, u64Key, U64_BYTES, writeU64BE } from './keys.ts';

type Bin = Database<Buffer, Buffer>;

const META_LOG_FLOOR = Buffer.from('sidLogFloor');
export const metaModelFloor = (model: number): Buffer => Buffer.from(`sidFloor/${model}`);
const MODEL_BYTES = 2;
const KEY_BYTES = U64_BYTES + MODEL_BYTES;
/** Default for `storage.sidHistory`. */
export const DEFAULT_SID_HISTORY = 100_000;

/** Bytes of one SID's change in an entry of L levels. */
const changeBytes = (levels: number): number => 2 * levels + 4;

/** One SID's item-count change. */
export interface LoggedChange {
  codes: Int32Array;
  delta: number;
}

/** The changes an entry holds, or undefined when it is malformed. */
function entryChanges(value: Uint8Array): number | undefined {
  if (value.length < 1) return undefined;
  const levels = value[0]!;
  const n = (value.length - 1) / changeBytes(levels);
  return levels >= 1 && Number.isInteger(n) ? n : undefined;
}

/** Each change of a well-formed entry: `fn(value, offset of its codes, levels, delta)`. */
export function forEachChange(value: Buffer, fn: (bytes: Buffer, at: number, levels: number, delta: number) => void): void {
  const levels = value[0]!;
  const width = changeBytes(levels);
  for (let p = 1; p < value.length; p += width) fn(value, p, levels, value.readInt32BE(p + 2 * levels));
}

export class SidLog {
  #log: Bin;
  #meta: Bin;

  constructor(env: RootDatabase<Buffer, Buffer>, meta: Bin) {
    this.#log = env.openDB<Buffer, Buffer>({ name: 'sidLog', encoding: 'binary', keyEncoding: 'binary' });
    this.#meta = meta;
  }

  /** Changes the log holds (read at open). */
  count(): number {
    let n = 0;
    for (const { key, value } of this.#log.getRange({})) {
      const k = entryChanges(value);
      if (k === undefined) throw new SidxError('SIDX_ERR_STORE', `sidLog entry ${key.toString('hex')} is malformed`);
      n += k;
    }
    return n;
  }

  /**
   * Appends `changes` (SIDs of one length) of `model` at `seq`, inside the write transaction; a second append at the
   * same seq and model joins the first. Returns the changes appended.
   */
  append(seq: bigint, model: number, changes: readonly LoggedChange[]): number {
    const levels = changes[0]?.codes.length ?? 0;
    const width = changeBytes(levels);
    const key = Buffer.allocUnsafe(KEY_BYTES);
    writeU64BE(key, 0, seq);
    key.writeUInt16BE(model, U64_BYTES);
    const before = this.#log.getBinary(key); // a copy: getBinaryFast's buffer reports a shorter length than TypedArray.set copies
    const value = Buffer.allocUnsafe((before?.length ?? 1) + changes.length * width);
    value[0] = levels;
    if (before) {
      if (before[0] !== levels) throw new SidxError('SIDX_ERR_STORE', `sidLog entry ${key.toString('hex')} has ${before[0]} levels, not ${levels}`);
      value.set(before);
    }
    let p = before?.length ?? 1;
    for (const c of changes) {
      if (c.codes.length !== levels) throw new SidxError('SIDX_ERR_STORE', `model ${model} written with SIDs of ${levels} and ${c.codes.length} levels`);
      for (let l = 0; l < levels; l++) value.writeUInt16BE(c.codes[l]!, p + 2 * l);
      value.writeInt32BE(c.delta, p + 2 * levels);
      p += width;
    }
    this.#log.put(key, value);
    return changes.length;
  }

  /**
   * Removes the oldest entries, whole seqs, until at most `keep` of the log's `count` changes remain; moves the floor
   * past them. Returns the changes removed. Inside the write transaction.
   */
  trim(count: number, keep: number): number {
    let removed = 0;
    let floor = readMetaU64(this.#meta, META_LOG_FLOOR);
    const gone: Buffer[] = [];
    for (const { key, value } of this.#log.getRange({})) {
      const seq = readU64BE(key, 0);
      if (count - removed <= keep && seq !== floor) break;
      gone.push(Buffer.from(key));
      removed += entryChanges(value) ?? 0;
      floor = seq;
    }
    for (const k of gone) this.#log.remove(k); // materialised: no deletes under a cursor
    this.#meta.put(META_LOG_FLOOR, u64Key(floor));
    return removed;
  }

  /** Empties the log: a delta needs since >= `lastSeq` (a catalog whose log had another form). Inside a write transaction. */
  restart(lastSeq: bigint): void {
    for (const k of Array.from(this.#log.getKeys({}))) this.#log.remove(k);
    this.#meta.put(META_LOG_FLOOR, u64Key(lastSeq));
  }

  /** Marks `model`'s changes up to `seq` as not logged (a dropped key space): deltas start after it. */
  floorModel(model: number, seq: bigint): void {
    this.#meta.put(metaModelFloor(model), u64Key(seq + 1n));
  }

  /** The smallest `since` a delta for `model` can start from. */
  floor(model: number): bigint {
    const global = readMetaU64(this.#meta, META_LOG_FLOOR);
    const own = readMetaU64(this.#meta, metaModelFloor(model));
    return own > global ? own : global;
  }

  /** Each entry of `model` (SIDs of `levels` levels) with since < seq <= upTo: `fn(value)`, in seq order. */
  forEachEntry(model: number, levels: number, since: bigint, upTo: bigint, fn: (value: Buffer) => void): void {
    for (const { key, value } of this.#log.getRange({ start: u64Key(since + 1n), end: u64Key(upTo + 1n) })) {
      if (key.length !== KEY_BYTES || key.readUInt16BE(U64_BYTES) !== model) continue;
      if (entryChanges(value) === undefined || value[0] !== levels) {
        throw new SidxError('SIDX_ERR_STORE', `sidLog entry ${key.toString('hex')} is malformed or not of ${levels} levels`);
      }
      fn(value);
    }
  }

  /** For catalog-verify: every entry's seq, model and value, or why it is malformed. */
  *entries(): Generator<{ seq: bigint; model: number; value: Buffer; problem?: string }> {
    for (const { key, value } of this.#log.getRange({})) {
      const ok = key.length === KEY_BYTES && entryChanges(value) !== undefined;
      yield {
        seq: key.length >= U64_BYTES ? readU64BE(key, 0) : -1n, model: key.length === KEY_BYTES ? key.readUInt16BE(U64_BYTES) : -1, value,
        ...(ok ? {} : { problem: `sidLog entry ${key.toString('hex')}: malformed (${value.length} bytes)` }),
      };
    }
  }
}
