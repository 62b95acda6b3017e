/**
 * SID key spaces of the catalog (catalog schema 2). An item's record (record.ts) holds its SID in one model;
 * while a re-index runs, and until the old key space is dropped after the swap, the item also has a SID in a
 * second model, kept in the `sids` database:
 *
 *   sids   internal key (u64 BE) ++ model version (u16 BE) -> codes (u16 LE each)
 *
 * Invariants: a side entry's model is never the record's model; every SID an item has (record or side entry)
 * has its L postings (one per rotation; the natural one alone in a natural-only catalog, catalog.ts) under that
 * model's version, and no other postings exist. So a key space
 * is complete for retrieval the moment every item has a SID in it, whichever of the two places holds it.
 *
 * These functions run inside the caller's write transaction (catalog.ts); reads use lmdb-js's sync getters.
 * The `activeModel` meta value (u32 BE) names the key space whose SID `Catalog.get`/`getByKey` report.
 */
import type { Database } from 'lmdb';
import { SidxError } from '../errors.ts';
import { assertCodes, assertModelVersion, MAX_LEVELS, sidKeyLength, writeSidKey } from '../sid/codec.ts';
import { assertLimit } from './catalog-input.ts';
import { META_LAST_SEQ, metaLevels, readMetaU32, readMetaU64, u32Value, type CatalogDbs, type PostingLayout } from './catalog-meta.ts';
import { readU64BE, U64_BYTES, u64Key } from './keys.ts';
import type { SidTally } from './sid-occupancy.ts';
import type { PostingJournal, PostingWatcher } from './posting-journal.ts';
import { scanSpacePostings, type SpacePostings } from './catalog-scan.ts';
import { readRecordId, readRecordSid, withSid } from './record.ts';

type Bin = Database<Buffer, Buffer>;

export interface SpaceDbs {
  items: Bin;
  postings: Bin;
  layout: PostingLayout;
  postingScan: CatalogDbs['postingScan'];
  sids: Bin;
  meta: Bin;
  /** The current write transaction's SID count changes (sid-occupancy.ts). */
  tally: SidTally;
  /** The current write transaction's posting changes, for the in-memory posting index (posting-journal.ts). */
  journal: PostingJournal;
}

export const META_ACTIVE_MODEL = Buffer.from('activeModel');
/** u64: the seq that setting the active model took (a served-model trie read before it came from another model). */
export const META_SERVED_FROM = Buffer.from('servedFromSeq');

const EMPTY = Buffer.alloc(0);
const SIDE_KEY_BYTES = U64_BYTES + 2;

/**
 * Writes (or with remove, deletes) the L postings of one SID (its natural one alone in a natural-only catalog) and
 * counts the change in the transaction's tally; `scratch` has room for sidKeyLength(L) + 8. The caller knows the
 * posting is absent (write) or present (remove).
 */
export function writePostings(dbs: Pick<SpaceDbs, 'postings' | 'tally' | 'journal' | 'layout'>, scratch: Buffer, model: number, codes: Int32Array, key: Uint8Array, remove: boolean): void {
  const postings = dbs.postings;
  const keyAt = sidKeyLength(codes.length);
  const posting = scratch.subarray(0, keyAt + U64_BYTES);
  posting.set(key, keyAt);
  for (let r = dbs.layout.naturalOnly ? codes.length - 1 : 0; r < codes.length; r++) {
    writeSidKey(posting, 0, model, r, codes);
    if (remove) postings.remove(posting);
    else postings.put(posting, EMPTY);
  }
  dbs.tally.touch(model, codes, remove ? -1 : 1);
  dbs.journal.record(model, codes, key, remove);
}

function sideKey(keyBuf: Uint8Array, model: number): Buffer {
  const out = Buffer.allocUnsafe(SIDE_KEY_BYTES);
  out.set(keyBuf, 0);
  out.writeUInt16BE(model, U64_BYTES);
  return out;
}

function encodeCodes(codes: Int32Array): Buffer {
  const out = Buffer.allocUnsafe(2 * codes.length);
  for (let l = 0; l < codes.length; l++) out.writeUInt16LE(codes[l]!, 2 * l);
  return out;
}

function decodeCodes(buf: Uint8Array): Int32Array {
  const codes = new Int32Array(buf.length >> 1);
  for (let l = 0; l < codes.length; l++) codes[l] = buf[2 * l]! | (buf[2 * l + 1]! << 8);
  return codes;
}

/** The item's SID in `model` from its side entry, or undefined. */
export function getSideSid(sids: Bin, keyBuf: Uint8Array, model: number): Int32Array | undefined {
  const v = sids.getBinaryFast(sideKey(keyBuf, model));
  return v === undefined ? undefined : decodeCodes(v);
}

/** Every side entry of one item. */
export function sideSids(sids: Bin, keyBuf: Uint8Array): Array<{ model: number; codes: Int32Array }> {
  const start = Buffer.from(keyBuf);
  const end = u64Key(readU64BE(keyBuf, 0) + 1n);
  const out: Array<{ model: number; codes: Int32Array }> = [];
  for (const { key, value } of sids.getRange({ start, end })) out.push({ model: key.readUInt16BE(U64_BYTES), codes: decodeCodes(value) });
  return out;
}

/** Removes every side entry of one item with its postings (before the record's SID changes or it is deleted). */
export function removeSideSids(dbs: SpaceDbs, keyBuf: Uint8Array, scratch: Buffer): void {
  for (const { model, codes } of sideSids(dbs.sids, keyBuf)) {
    writePostings(dbs, scratch, model, codes, keyBuf, true);
    dbs.sids.remove(sideKey(keyBuf, model));
  }
}

/** Adds the item's SID in `model` (not its record's model) with its postings. */
export function putSideSid(dbs: SpaceDbs, keyBuf: Uint8Array, model: number, codes: Int32Array, scratch: Buffer): void {
  dbs.sids.put(sideKey(keyBuf, model), encodeCodes(codes));
  writePostings(dbs, scratch, model, codes, keyBuf, false);
}

/**
 * Re-index batch: gives each still-present item its SID in `model`, unless it already has one there (written by
 * an upsert during the re-index, or by this batch before a crash: a replayed batch changes nothing).
 */
export function putSidsTxn(dbs: SpaceDbs, model: number, entries: ReadonlyArray<{ key: bigint; codes: Int32Array }>, scratch: Buffer): { written: number; skipped: number } {
  let written = 0;
  for (const { key, codes } of entries) {
    const keyBuf = u64Key(key);
    const value = dbs.items.getBinaryFast(keyBuf);
    if (value === undefined || readRecordSid(value).model === model || getSideSid(dbs.sids, keyBuf, model) !== undefined) continue;
    putSideSid(dbs, keyBuf, model, codes, scratch);
    written++;
  }
  return { written, skipped: entries.length - written };
}

export interface DropResult {
  /** Items whose record moved from `drop` to `keep` (their side entry became the record's SID). */
  promoted: number;
  /** Side entries of `drop` removed. */
  removed: number;
  /** Items in `drop` with no SID in `keep`: left untouched (the caller encodes them and calls again). */
  orphans: bigint[];
}

/**
 * Removes key space `drop` from the given items, keeping `keep`: a record in `drop` is rewritten with its `keep`
 * SID (whose postings already exist), and its `drop` postings go; a side entry in `drop` goes with its postings.
 */
export function dropSpaceTxn(dbs: SpaceDbs, drop: number, keep: number, keys: BigInt64Array, scratch: Buffer): DropResult {
  const out: DropResult = { promoted: 0, removed: 0, orphans: [] };
  for (const key of keys) {
    const keyBuf = u64Key(key);
    const value = dbs.items.getBinary(keyBuf);
    if (value === undefined) continue;
    const sid = readRecordSid(value);
    if (sid.model === drop) {
      const kept = getSideSid(dbs.sids, keyBuf, keep);
      if (kept === undefined) {
        out.orphans.push(key);
        continue;
      }
      dbs.items.put(keyBuf, withSid(value, key, keep, kept));
      dbs.sids.remove(sideKey(keyBuf, keep));
      writePostings(dbs, scratch, drop, sid.codes, keyBuf, true);
      out.promoted++;
    } else {
      const side = getSideSid(dbs.sids, keyBuf, drop);
      if (side === undefined) continue;
      writePostings(dbs, scratch, drop, side, keyBuf, true);
      dbs.sids.remove(sideKey(keyBuf, drop));
      out.removed++;
    }
  }
  return out;
}

/** Throws unless `model`'s SIDs have `levels` levels; records the count at a model's first SID. In a write txn. */
export function checkLevels(meta: Bin, model: number, levels: number, field = 'codes'): void {
  const stored = meta.getBinary(metaLevels(model))?.[0];
  if (stored === undefined) meta.put(metaLevels(model), Buffer.of(levels));
  else if (stored !== levels) throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${model} has ${stored}-level SIDs, the batch has ${levels}`, { field });
}

/** Up to `limit` (at most 65,536) internal keys of `items` greater than `after`, in key order. */
export function keysAfterIn(items: Bin, after: bigint, limit: number): BigInt64Array {
  const out = new BigInt64Array(Math.min(limit, 65_536));
  let n = 0;
  for (const key of items.getKeys({ start: u64Key(after + 1n), limit: out.length })) out[n++] = readU64BE(key, 0);
  return out.subarray(0, n);
}

export interface DropRequest {
  after: bigint;
  limit: number;
  drop: number;
  keep: number;
}

/** One drop batch: its last key and item count, with what dropSpaceTxn did. */
export interface DropBatch extends DropResult {
  last: bigint;
  n: number;
}

type Txn = <T>(what: string, fn: () => T) => T;
type DropOffThread = (req: DropRequest) => Promise<DropBatch | null>;

/** The catalog's key-space operations (`Catalog.spaces`); `write` runs one write transaction, `read` a checked read. */
export class KeySpaces {
  readonly dbs: SpaceDbs;
  #write: Txn;
  #read: Txn;
  #dropOffThread: DropOffThread;
  #active: number | undefined;

  constructor(dbs: SpaceDbs, write: Txn, read: Txn, dropOffThread: DropOffThread) {
    this.dbs = dbs;
    this.#write = write;
    this.#read = read;
    this.#dropOffThread = dropOffThread;
  }

  loadActive(): void {
    this.#active = readMetaU32(this.dbs.meta, META_ACTIVE_MODEL);
  }

  /** The key space whose SIDs Catalog.get/getByKey report (set by a re-index swap), or undefined: each record's own. */
  get activeModel(): number | undefined {
    return this.#active;
  }

  /**
   * Makes `model` the key space reads report, in one committed transaction (the re-index swap). It takes one seq
   * (no change-log entry), so every trie snapshot of the served model read before it has a smaller seq.
   */
  setActiveModel(model: number): void {
    assertModelVersion(model);
    this.#write('setActiveModel', () => {
      const seq = u64Key(readMetaU64(this.dbs.meta, META_LAST_SEQ) + 1n);
      this.dbs.meta.put(META_ACTIVE_MODEL, u32Value(model));
      this.dbs.meta.put(META_LAST_SEQ, seq);
      this.dbs.meta.put(META_SERVED_FROM, seq);
    });
    this.#active = model;
  }

  /** The seq taken by the last setActiveModel (0 when never). */
  get servedFromSeq(): bigint {
    return this.#read('servedFromSeq', () => readMetaU64(this.dbs.meta, META_SERVED_FROM));
  }

  /** `rec` (fresh from readRecord) with the SID of the active key space, when the item has one there. */
  resolve<R extends { model: number; codes: Int32Array }>(rec: R, keyBuf: Uint8Array): R {
    const active = this.#active;
    if (active === undefined || rec.model === active) return rec;
    const codes = getSideSid(this.dbs.sids, keyBuf, active);
    if (codes !== undefined) {
      rec.model = active;
      rec.codes = codes;
    }
    return rec;
  }

  /**
   * Re-index batch (putSidsTxn): SIDs in `model` for items that have none there yet, one transaction. A batch that
   * writes takes one catalog seq (no change-log entry: items and vectors are unchanged), so the target's SID
   * trie has a seq of its own to be named by (sid-occupancy.ts).
   */
  putSids(model: number, entries: ReadonlyArray<{ key: bigint; codes: Int32Array }>): { written: number; skipped: number } {
    assertModelVersion(model);
    for (const [i, e] of entries.entries()) assertCodes(e.codes, `entries[${i}].codes`);
    const scratch = Buffer.alloc(sidKeyLength(MAX_LEVELS) + U64_BYTES);
    return this.#write('putSids', () => {
      if (entries.length > 0) checkLevels(this.dbs.meta, model, entries[0]!.codes.length);
      const out = putSidsTxn(this.dbs, model, entries, scratch);
      if (out.written > 0) this.dbs.meta.put(META_LAST_SEQ, u64Key(readMetaU64(this.dbs.meta, META_LAST_SEQ) + 1n));
      return out;
    });
  }

  /**
   * Drops key space `drop` from the given items, keeping `keep` (dropSpaceTxn), one transaction. The SIDs it
   * empties are not logged (a dropped space has no readers); deltas for `drop` restart after it.
   */
  dropSpace(drop: number, keep: number, keys: BigInt64Array): DropResult {
    assertModelVersion(drop);
    assertModelVersion(keep);
    const scratch = Buffer.alloc(sidKeyLength(MAX_LEVELS) + U64_BYTES);
    return this.#write('dropSpace', () => {
      this.dbs.tally.quiet(drop);
      return dropSpaceTxn(this.dbs, drop, keep, keys, scratch);
    });
  }

  /**
   * The re-index drop's batch: dropSpace over the next `limit` items after key `after`, on the drop thread
   * (space-drop-thread.ts: reads, writes and the synced commit all off the main thread, so requests go on
   * meanwhile); null when no item is left.
   */
  dropAfterOffThread(after: bigint, limit: number, drop: number, keep: number): Promise<DropBatch | null> {
    assertModelVersion(drop);
    assertModelVersion(keep);
    assertLimit(limit);
    return this.#dropOffThread({ after, limit, drop, keep });
  }

  /** Every SID of key space `model` with its item's key, in (SID, key) order (one range scan; an empty space if unknown). */
  postingsOf(model: number, levels: number): SpacePostings {
    assertModelVersion(model);
    return this.#read('postingsOf', () => scanSpacePostings(this.dbs.postingScan, model, levels, (this.dbs.items.getStats() as { entryCount: number }).entryCount));
  }

  /** After each committed write, `watcher` gets its posting changes in the key spaces it wants (posting-journal.ts). */
  watchPostings(watcher: PostingWatcher | undefined): void {
    this.dbs.journal.watch(watcher);
  }

  /** The item's SID in `model` (its record's or a side entry), or undefined. */
  sidIn(key: bigint, model: number): Int32Array | undefined {
    return this.#read('sidIn', () => {
      const keyBuf = u64Key(key);
      const value = this.dbs.items.getBinaryFast(keyBuf);
      if (value === undefined) return undefined;
      const sid = readRecordSid(value);
      return sid.model === model ? sid.codes : getSideSid(this.dbs.sids, keyBuf, model);
    });
  }

  /** Id and SIDs in models `a` and `b` of up to `limit` items with internal key > `after` (no vectors read). */
  sidPairsAfter(after: bigint, limit: number, a: number, b: number): Array<{ key: bigint; id: string; a?: Int32Array; b?: Int32Array }> {
    return this.#read('sidPairsAfter', () => {
      assertLimit(limit);
      const out: Array<{ key: bigint; id: string; a?: Int32Array; b?: Int32Array }> = [];
      for (const { key, value } of this.dbs.items.getRange({ start: u64Key(after + 1n), limit })) {
        const sid = readRecordSid(value);
        const id = readRecordId(value);
        const keyBuf = Buffer.from(key);
        out.push({
          key: readU64BE(keyBuf, 0), id,
          a: sid.model === a ? sid.codes : getSideSid(this.dbs.sids, keyBuf, a),
          b: sid.model === b ? sid.codes : getSideSid(this.dbs.sids, keyBuf, b),
        });
      }
      return out;
    });
  }

  /** Internal keys of up to `limit` (at most 65,536) items with key > `after`, in key order (no records read: re-index drops). */
  keysAfter(after: bigint, limit: number): BigInt64Array {
    return this.#read('keysAfter', () => {
      assertLimit(limit);
      return keysAfterIn(this.dbs.items, after, limit);
    });
  }
}
