/**
 * SID occupancy of the catalog: how many items hold each SID, per model, held in memory (the tries, src/sid/sid-trie.ts,
 * built from the natural postings at open), plus a bounded log, written in the same transaction as the postings, of
 * the moments a SID became occupied or empty:
 *
 *   sidLog     seq (u64 BE) ++ model (u16 BE) ++ codes (u16 BE each) -> op (u8: 1 became occupied, 2 became empty)
 *
 * meta: `sidLogFloor` (u64): log entries with seq <= it were trimmed; `sidFloor/<model>` (u64): a delta for that
 * model needs since >= it (set when a key space is dropped, whose removals are not logged).
 *
 * Every posting write goes through `writePostings` (catalog-spaces.ts), which adds ±1 to the transaction's tally;
 * `flush` (inside the transaction, at its end) logs the SIDs the tally turned occupied or empty, reading how many
 * postings each touched SID has now, and `publishTaken` (after the commit) folds the tally into the tries. A failed
 * transaction drops both. Schemas 3 to 6 also kept the counts in LMDB (`sidCounts`): one B-tree write at a random place
 * per item, a fifth of a 1M-item ingest's time; the postings hold the same numbers, and the upgrade to 7 drops them.
 */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { SidTrie, SidTrieBuilder } from '../sid/sid-trie.ts';
import { SID_KEY_HEADER_BYTES } from '../sid/codec.ts';
import { modelLevels, readMetaU64 } from './catalog-meta.ts';
import { openScanView, type ScanView } from './catalog-scan.ts';
import { prefixEnd, readU64BE, u64Key, U64_BYTES, writeU64BE } from './keys.ts';

type Bin = Database<Buffer, Buffer>;

export const SID_OCCUPIED = 1;
export const SID_EMPTIED = 2;
const META_LOG_FLOOR = Buffer.from('sidLogFloor');
export const metaModelFloor = (model: number): Buffer => Buffer.from(`sidFloor/${model}`);
const MODEL_BYTES = 2;
const TRIM_CHUNK = 4096;
/** Default for `storage.sidHistory`. */
export const DEFAULT_SID_HISTORY = 100_000;

function countKey(model: number, codes: ArrayLike<number>): Buffer {
  const key = Buffer.allocUnsafe(MODEL_BYTES + 2 * codes.length);
  key.writeUInt16BE(model, 0);
  for (let l = 0; l < codes.length; l++) key.writeUInt16BE(codes[l]!, MODEL_BYTES + 2 * l);
  return key;
}

/** Codes stored big-endian from `offset` to the end of `key`. */
function codesAt(key: Uint8Array, offset: number, out = new Int32Array((key.length - offset) >> 1)): Int32Array {
  for (let l = 0, p = offset; l < out.length; l++, p += 2) out[l] = (key[p]! << 8) | key[p + 1]!;
  return out;
}

/** One SID's item-count change in `model`: `key` is model (u16 BE) ++ codes (u16 BE each). */
export interface CountChange {
  model: number;
  key: Uint8Array;
  delta: number;
}

interface Pending extends CountChange {
  key: Buffer;
}

/** A transaction's flushed tally, taken out until it commits: its count changes, log entries added, the seq before it. */
export interface FlushedTally {
  changes: readonly CountChange[];
  logged: number;
  before: bigint;
}

/** Removes the SID counts schemas 3 to 6 kept in LMDB (the upgrade to schema 7). */
export function dropStoredCounts(env: RootDatabase<Buffer, Buffer>): void {
  env.openDB<Buffer, Buffer>({ name: 'sidCounts', encoding: 'binary', keyEncoding: 'binary' }).dropSync();
}

/** Postings of the SID whose natural key (model, rotation L-1, codes) is `prefix`, counting at most `limit`. */
function countPostings(postings: ScanView<null>, prefix: Buffer, limit: number): number {
  let n = 0;
  for (const _ of postings.getKeys({ start: prefix, end: prefixEnd(prefix), limit })) n++;
  return n;
}

/**
 * SID_OCCUPIED or SID_EMPTIED when `e` turned its SID so, else 0; read inside the transaction that wrote `e`'s
 * postings: a SID that gained d items turned occupied when it now has d, one that lost items when it now has none.
 */
function turnedBy(postings: ScanView<null>, e: Pending): number {
  const prefix = Buffer.allocUnsafe(e.key.length + 1);
  prefix[0] = e.key[0]!;
  prefix[1] = e.key[1]!;
  prefix[2] = ((e.key.length - MODEL_BYTES) >> 1) - 1;
  prefix.set(e.key.subarray(MODEL_BYTES), SID_KEY_HEADER_BYTES);
  if (e.delta < 0) return countPostings(postings, prefix, 1) === 0 ? SID_EMPTIED : 0;
  const now = countPostings(postings, prefix, e.delta + 1);
  if (now < e.delta) throw new SidxError('SIDX_ERR_STORE', `SID ${e.key.toString('hex')} gained ${e.delta} items but has ${now} postings`);
  return now === e.delta ? SID_OCCUPIED : 0;
}

/**
 * `flush` for a transaction whose tally holds quiet models only (a key space being dropped, on another thread with
 * its own handles): moves those models' delta floors past `seq` and returns the changes for
 * `SidOccupancy.publishChanges` once the transaction has committed.
 */
export function flushQuietTally(meta: Bin, tally: SidTally, seq: bigint): CountChange[] {
  const out: CountChange[] = [];
  const floored = new Set<number>();
  for (const e of tally.entries()) {
    if (e.delta === 0) continue;
    if (!tally.isQuiet(e.model)) throw new SidxError('SIDX_ERR_STORE', `SID count change of model ${e.model} outside a quiet transaction`);
    if (!floored.has(e.model)) meta.put(metaModelFloor(e.model), u64Key(seq + 1n));
    floored.add(e.model);
    out.push({ model: e.model, key: e.key, delta: e.delta });
  }
  return out;
}

/** Item-count changes per SID within one write transaction. */
export class SidTally {
  #m = new Map<string, Pending>();
  #quiet = new Set<number>();

  /** One item gains (+1) or loses (-1) SID `codes` in `model`. */
  touch(model: number, codes: Int32Array, delta: number): void {
    const key = countKey(model, codes);
    const name = key.toString('latin1');
    const e = this.#m.get(name);
    if (e) e.delta += delta;
    else this.#m.set(name, { model, key, delta });
  }

  /** Changes to `model` in this transaction are not logged (a key space being dropped). */
  quiet(model: number): void {
    this.#quiet.add(model);
  }

  isQuiet(model: number): boolean {
    return this.#quiet.has(model);
  }

  entries(): IterableIterator<Pending> {
    return this.#m.values();
  }

  reset(): void {
    this.#m.clear();
    this.#quiet.clear();
  }
}

export interface SidDelta {
  /** Flat n × L codes, SIDs in lexicographic order. */
  added: Int32Array;
  removed: Int32Array;
}

export class SidOccupancy {
  readonly tally = new SidTally();
  /** `postings` with keys as views (openScanView): the trie load and `flush`'s counts allocate nothing per posting. */
  #postings: ScanView<null>;
  #log: Bin;
  #meta: Bin;
  #history: number;
  #tries = new Map<number, SidTrie>();
  /** Whether the tries are built; until then commits do not update them (the load reads the committed counts). */
  #loaded = false;
  #logCount = 0;
  #pending: Pending[] = [];
  #pendingLogCount = 0;
  #held: FlushedTally[] = [];

  /** `history`: log entries kept (older ones are trimmed; a delta from before them becomes a full snapshot). */
  constructor(env: RootDatabase<Buffer, Buffer>, meta: Bin, history: number) {
    this.#postings = openScanView(env, 'postings', () => null);
    this.#log = env.openDB<Buffer, Buffer>({ name: 'sidLog', encoding: 'binary', keyEncoding: 'binary' });
    this.#meta = meta;
    if (!Number.isSafeInteger(history) || history < 1) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `sidHistory must be a positive integer, got ${history}`, { field: 'sidHistory' });
    }
    this.#history = history;
  }

  /** At open, after any back-fill: reads the log's size and builds the tries, unless `deferTries` (then on first use). */
  open(deferTries = false): void {
    this.#logCount = (this.#log.getStats() as { entryCount: number }).entryCount;
    if (!deferTries) this.#loadTries();
  }

  /**
   * Builds each model's trie from its natural postings (rotation L-1: in SID order, a SID's items side by side) in one
   * pass (SidTrie.fromSorted). Outside any transaction: they must hold committed postings only.
   */
  #loadTries(): void {
    this.#tries.clear();
    for (const [model, levels] of modelLevels(this.#meta)) {
      const start = Buffer.of(model >>> 8, model & 0xff, levels - 1);
      const sidEnd = SID_KEY_HEADER_BYTES + 2 * levels;
      const builder = new SidTrieBuilder(levels);
      const sid = Buffer.alloc(sidEnd);
      let sids = 0;
      let items = 0;
      for (const key of this.#postings.getKeys({ start, end: prefixEnd(start) })) {
        if (key.length !== sidEnd + U64_BYTES) throw new SidxError('SIDX_ERR_STORE', `posting key of ${key.length} bytes in model ${model} (${levels} levels)`);
        if (items > 0 && sid.compare(key, 0, sidEnd, 0, sidEnd) === 0) {
          items++;
          continue;
        }
        if (items > 0) builder.pushBigEndian(sid, SID_KEY_HEADER_BYTES, items);
        sid.set(key.subarray(0, sidEnd));
        items = 1;
        sids++;
      }
      if (items > 0) builder.pushBigEndian(sid, SID_KEY_HEADER_BYTES, items);
      if (sids > 0) this.#tries.set(model, builder.build());
    }
    this.#loaded = true;
  }

  /** Builds the tries unless they are built (deferred at open). */
  ensureTries(): void {
    if (!this.#loaded) this.#loadTries();
  }

  #trieFor(model: number, levels: number): SidTrie {
    let trie = this.#tries.get(model);
    if (!trie) {
      trie = new SidTrie(levels);
      this.#tries.set(model, trie);
    }
    return trie;
  }

  /** Starts the log of a catalog that had none (schema 1 or 2): a delta needs since >= `lastSeq`. */
  startLog(lastSeq: bigint): void {
    this.#meta.put(META_LOG_FLOOR, u64Key(lastSeq));
  }

  /**
   * Logs each SID the tally turned occupied or empty at `seq` (the transaction's last seq). Call at the end of the
   * write transaction; `take` it, and `publishTaken` after the commit.
   */
  flush(seq: bigint): void {
    let logged = 0;
    for (const e of this.tally.entries()) {
      if (e.delta === 0) continue;
      const turned = turnedBy(this.#postings, e);
      this.#pending.push(e);
      if (turned === 0) continue;
      if (this.tally.isQuiet(e.model)) {
        this.#meta.put(metaModelFloor(e.model), u64Key(seq + 1n));
        continue;
      }
      const logKey = Buffer.allocUnsafe(U64_BYTES + e.key.length);
      writeU64BE(logKey, 0, seq);
      e.key.copy(logKey, U64_BYTES);
      this.#log.put(logKey, Buffer.of(turned));
      logged++;
    }
    this.#pendingLogCount = this.#logCount + logged;
    if (this.#pendingLogCount > this.#history + Math.max(1, this.#history >> 3)) this.#trim();
  }

  /** Removes the oldest log entries (whole seqs) until at most `history` remain. */
  #trim(): void {
    let excess = this.#pendingLogCount - this.#history;
    let floor = readMetaU64(this.#meta, META_LOG_FLOOR);
    while (excess > 0) {
      const oldest = Array.from(this.#log.getKeys({ limit: Math.min(excess, TRIM_CHUNK) }));
      if (oldest.length === 0) break;
      floor = readU64BE(oldest[oldest.length - 1]!, 0);
      // The rest of the last seq goes too: a seq is kept whole or not at all. Materialised: no deletes under a cursor.
      const gone = Array.from(this.#log.getKeys({ end: u64Key(floor + 1n) }));
      for (const k of gone) this.#log.remove(k);
      excess -= gone.length;
      this.#pendingLogCount -= gone.length;
    }
    this.#meta.put(META_LOG_FLOOR, u64Key(floor));
  }

  /**
   * Takes the flushed tally out of the transaction (`before`: the catalog's seq before it); `publishTaken` applies it
   * to the tries after the commit. A `held` one (its commit completes later) holds `seqOf` back until then.
   */
  take(before: bigint, held = false): FlushedTally {
    const taken = { changes: this.#pending, logged: this.#pendingLogCount - this.#logCount, before };
    this.abort();
    if (held) this.#held.push(taken);
    return taken;
  }

  /** Applies a taken tally once its transaction has committed (log counts add up in any order). */
  publishTaken(taken: FlushedTally): void {
    this.publishChanges(taken.changes);
    this.#logCount += taken.logged;
    this.#pendingLogCount = this.#logCount;
    this.release(taken);
  }

  /** Forgets a held tally (published, or its commit failed). */
  release(taken: FlushedTally): void {
    const i = this.#held.indexOf(taken);
    if (i >= 0) this.#held.splice(i, 1);
  }

  /** The seq the tries reflect when the catalog's last committed one is `lastSeq`: the seq before any held commit. */
  seqOf(lastSeq: bigint): bigint {
    return this.#held.length > 0 ? this.#held[0]!.before : lastSeq;
  }

  /** Applies count changes committed by another thread (flushQuietTally) to the tries. */
  publishChanges(changes: readonly CountChange[]): void {
    if (!this.#loaded) return; // committed: the load reads them
    for (const e of changes) this.#trieFor(e.model, (e.key.length - MODEL_BYTES) >> 1).add(codesAt(e.key, MODEL_BYTES), e.delta);
  }

  /** Forgets the transaction's tally (it failed, or it was taken). */
  abort(): void {
    this.#pending = [];
    this.#pendingLogCount = this.#logCount;
    this.tally.reset();
  }

  /** The model's trie, or undefined when it never had a SID. Valid until the next write. */
  trie(model: number): SidTrie | undefined {
    this.ensureTries();
    return this.#tries.get(model);
  }

  /** The smallest `since` a delta for `model` can start from. */
  floor(model: number): bigint {
    const global = readMetaU64(this.#meta, META_LOG_FLOOR);
    const own = readMetaU64(this.#meta, metaModelFloor(model));
    return own > global ? own : global;
  }

  /**
   * SIDs of `model` that became occupied (added) or empty (removed) after `since`, up to now; undefined when the
   * log no longer covers `since` (or since > lastSeq; `lastSeq`: what the tries reflect, sid-occupancy-reads.ts). A SID
   * that changed and changed back is in neither list.
   */
  delta(model: number, levels: number, since: bigint, lastSeq: bigint): SidDelta | undefined {
    if (since > lastSeq || since < this.floor(model)) return undefined;
    this.ensureTries();
    const firstOp = new Map<string, number>();
    const prefix = Buffer.allocUnsafe(MODEL_BYTES);
    prefix.writeUInt16BE(model, 0);
    for (const { key, value } of this.#log.getRange({ start: u64Key(since + 1n), end: u64Key(lastSeq + 1n) })) {
      if (key.length !== U64_BYTES + MODEL_BYTES + 2 * levels || key.compare(prefix, 0, MODEL_BYTES, U64_BYTES, U64_BYTES + MODEL_BYTES) !== 0) continue;
      const name = key.toString('latin1', U64_BYTES + MODEL_BYTES);
      if (!firstOp.has(name)) firstOp.set(name, value[0]!);
    }
    const trie = this.#tries.get(model);
    const added: Int32Array[] = [];
    const removed: Int32Array[] = [];
    for (const [name, op] of firstOp) {
      const codes = codesAt(Buffer.from(name, 'latin1'), 0);
      const was = op === SID_EMPTIED;
      const now = (trie?.count(codes) ?? 0) > 0;
      if (now && !was) added.push(codes);
      else if (!now && was) removed.push(codes);
    }
    return { added: flatSorted(added, levels), removed: flatSorted(removed, levels) };
  }
}

function compareCodes(a: Int32Array, b: Int32Array): number {
  for (let l = 0; l < a.length; l++) if (a[l] !== b[l]) return a[l]! - b[l]!;
  return 0;
}

function flatSorted(sids: Int32Array[], levels: number): Int32Array {
  sids.sort(compareCodes);
  const out = new Int32Array(sids.length * levels);
  sids.forEach((s, i) => out.set(s, i * levels));
  return out;
}
