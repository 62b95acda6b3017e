/**
 * SID occupancy of the catalog: how many items hold each SID, per model, in memory (one trie per model,
 * src/sid/sid-trie.ts, counted from the natural postings at open), and which SIDs became occupied or empty since a
 * seq, from the SID log (sid-log.ts), appended in the same transaction as the postings.
 *
 * Every posting write goes through `writePostings` (catalog-spaces.ts), which adds ±1 to the transaction's tally;
 * `flush` (inside the transaction, at its end) appends the tally to the log, and `publishTaken` (after the commit)
 * folds it into the tries. A failed transaction drops both.
 */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { SidTrie, SidTrieBuilder } from '../sid/sid-trie.ts';
import { SID_KEY_HEADER_BYTES } from '../sid/codec.ts';
import { modelLevels } from './catalog-meta.ts';
import { openScanView, type ScanView } from './catalog-scan.ts';
import { prefixEnd, U64_BYTES } from './keys.ts';
import { forEachChange, SidLog } from './sid-log.ts';

type Bin = Database<Buffer, Buffer>;

export { DEFAULT_SID_HISTORY } from './sid-log.ts';

/** One SID's item-count change in `model`. */
export interface CountChange {
  model: number;
  codes: Int32Array;
  delta: number;
}

/** A SID's name in a transaction's tally: one UTF-16 unit for the model and one per code (all at most 0xffff). */
function tallyName(model: number, codes: Int32Array): string {
  switch (codes.length) {
    case 2: return String.fromCharCode(model, codes[0]!, codes[1]!);
    case 3: return String.fromCharCode(model, codes[0]!, codes[1]!, codes[2]!);
    case 4: return String.fromCharCode(model, codes[0]!, codes[1]!, codes[2]!, codes[3]!);
    default: return String.fromCharCode(model, ...codes);
  }
}

/** Codes stored big-endian from `offset`, `levels` of them. */
function codesAt(bytes: Uint8Array, offset: number, levels: number): Int32Array {
  const out = new Int32Array(levels);
  for (let l = 0, p = offset; l < levels; l++, p += 2) out[l] = (bytes[p]! << 8) | bytes[p + 1]!;
  return out;
}

/** A model's SIDs in order, `count` rows of L u16 codes (a SID once per item holding it): catalog-scan's SpacePostings. */
export interface SortedSids {
  count: number;
  codes: Uint16Array;
}

/** The trie of `rows` (L = `levels`): each run of equal rows is one SID held by that many items; undefined when empty. */
function trieOfSorted(rows: SortedSids, levels: number): SidTrie | undefined {
  if (rows.count === 0) return undefined;
  const codes = new Uint16Array(rows.count * levels);
  const counts = new Uint32Array(rows.count);
  let n = -1;
  for (let r = 0, at = 0; r < rows.count; r++, at += levels) {
    let same = n >= 0;
    for (let l = 0; same && l < levels; l++) same = rows.codes[at + l] === codes[n * levels + l];
    if (!same) {
      n++;
      for (let l = 0; l < levels; l++) codes[n * levels + l] = rows.codes[at + l]!;
    }
    counts[n]++;
  }
  return SidTrie.fromSorted(levels, codes, counts, n + 1);
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

/**
 * The tally's changes (zero ones left out), and those to log by model; a quiet model's move its delta floor past `seq`
 * instead (once per model).
 */
function splitTally(tally: SidTally, log: SidLog, seq: bigint): { changes: CountChange[]; logged: Map<number, CountChange[]> } {
  const changes: CountChange[] = [];
  const logged = new Map<number, CountChange[]>();
  const floored = new Set<number>();
  for (const e of tally.entries()) {
    if (e.delta === 0) continue;
    changes.push(e);
    if (tally.isQuiet(e.model)) {
      if (!floored.has(e.model)) log.floorModel(e.model, seq);
      floored.add(e.model);
      continue;
    }
    const list = logged.get(e.model);
    if (list) list.push(e);
    else logged.set(e.model, [e]);
  }
  return { changes, logged };
}

/**
 * `flush` for a transaction whose tally holds quiet models only (a key space being dropped, on another thread with
 * its own handles): moves those models' delta floors past `seq` and returns the changes for
 * `SidOccupancy.publishChanges` once the transaction has committed.
 */
export function flushQuietTally(log: SidLog, tally: SidTally, seq: bigint): CountChange[] {
  const { changes, logged } = splitTally(tally, log, seq);
  if (logged.size > 0) throw new SidxError('SIDX_ERR_STORE', `SID count change of model ${[...logged.keys()][0]} outside a quiet transaction`);
  return changes;
}

/** Item-count changes per SID within one write transaction. */
export class SidTally {
  #m = new Map<string, CountChange>();
  #quiet = new Set<number>();

  /** One item gains (+1) or loses (-1) SID `codes` in `model`. */
  touch(model: number, codes: Int32Array, delta: number): void {
    const name = tallyName(model, codes);
    const e = this.#m.get(name);
    if (e) e.delta += delta;
    else this.#m.set(name, { model, codes: codes.slice(), delta });
  }

  /** Changes to `model` in this transaction are not logged (a key space being dropped). */
  quiet(model: number): void {
    this.#quiet.add(model);
  }

  isQuiet(model: number): boolean {
    return this.#quiet.has(model);
  }

  entries(): IterableIterator<CountChange> {
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
  /** `postings` with keys as views (openScanView): the trie load allocates nothing per posting. */
  #postings: ScanView<null>;
  #log: SidLog;
  #meta: Bin;
  #history: number;
  #tries = new Map<number, SidTrie>();
  /** Whether the tries are built; until then commits do not update them (the load reads the committed postings). */
  #loaded = false;
  #logCount = 0;
  #pending: CountChange[] = [];
  #pendingLogCount = 0;
  #held: FlushedTally[] = [];

  /** `history`: SID changes the log keeps (older ones are trimmed; a delta from before them becomes a full snapshot). */
  constructor(env: RootDatabase<Buffer, Buffer>, meta: Bin, history: number) {
    this.#postings = openScanView(env, 'postings', () => null);
    this.#log = new SidLog(env, meta);
    this.#meta = meta;
    if (!Number.isSafeInteger(history) || history < 1) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `sidHistory must be a positive integer, got ${history}`, { field: 'sidHistory' });
    }
    this.#history = history;
  }

  /** At open, after any upgrade: reads the log's size and builds the tries, unless `deferTries` (then on first use). */
  open(deferTries = false): void {
    this.#logCount = this.#log.count();
    if (!deferTries) this.#loadTries();
  }

  /**
   * Builds each model's trie from its natural postings (rotation L-1: in SID order, a SID's items side by side) in one
   * pass (SidTrie.fromSorted), or from `scanned`, that model's postings read already (the live posting index's scan at
   * open). Outside any transaction: they must hold committed postings only.
   */
  #loadTries(scanned?: ReadonlyMap<number, SortedSids>): void {
    this.#tries.clear();
    for (const [model, levels] of modelLevels(this.#meta)) {
      const seed = scanned?.get(model);
      if (seed) {
        const trie = trieOfSorted(seed, levels);
        if (trie) this.#tries.set(model, trie);
        continue;
      }
      const start = Buffer.of(model >>> 8, model & 0xff, levels - 1);
      const sidEnd = SID_KEY_HEADER_BYTES + 2 * levels;
      const builder = new SidTrieBuilder(levels);
      const sid = Buffer.alloc(sidEnd);
      let sids = 0;
      let items = 0;
      for (const key of this.#postings.getKeys({ start, end: prefixEnd(start) })) {
        if (key.length !== sidEnd + U64_BYTES) throw new SidxError('SIDX_ERR_STORE', `posting key of ${key.length} bytes in model ${model} (${levels} levels)`);
        let i = SID_KEY_HEADER_BYTES; // the range fixes the model and rotation; a byte loop beats a native compare here
        if (items > 0) while (i < sidEnd && key[i] === sid[i]) i++;
        if (i === sidEnd) {
          items++;
          continue;
        }
        if (items > 0) builder.pushBigEndian(sid, SID_KEY_HEADER_BYTES, items);
        for (i = SID_KEY_HEADER_BYTES; i < sidEnd; i++) sid[i] = key[i]!;
        items = 1;
        sids++;
      }
      if (items > 0) builder.pushBigEndian(sid, SID_KEY_HEADER_BYTES, items);
      if (sids > 0) this.#tries.set(model, builder.build());
    }
    this.#loaded = true;
  }

  /** Builds the tries unless they are built (deferred at open); `scanned` as in #loadTries. */
  ensureTries(scanned?: ReadonlyMap<number, SortedSids>): void {
    if (!this.#loaded) this.#loadTries(scanned);
  }

  #trieFor(model: number, levels: number): SidTrie {
    let trie = this.#tries.get(model);
    if (!trie) {
      trie = new SidTrie(levels);
      this.#tries.set(model, trie);
    }
    return trie;
  }

  /** Starts the log afresh at `lastSeq` (a catalog whose log had another form, or none). Inside a write transaction. */
  restartLog(lastSeq: bigint): void {
    this.#log.restart(lastSeq);
  }

  /**
   * Appends the tally's changes to the log at `seq` (the transaction's last seq); a quiet model's move its delta floor
   * instead. Call at the end of the write transaction; `take` it, and `publishTaken` after the commit.
   */
  flush(seq: bigint): void {
    const { changes, logged: byModel } = splitTally(this.tally, this.#log, seq);
    for (const e of changes) this.#pending.push(e);
    let logged = 0;
    for (const [model, list] of byModel) logged += this.#log.append(seq, model, list);
    this.#pendingLogCount = this.#logCount + logged;
    if (this.#pendingLogCount > this.#history + Math.max(1, this.#history >> 3)) {
      this.#pendingLogCount -= this.#log.trim(this.#pendingLogCount, this.#history);
    }
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
    for (const e of changes) this.#trieFor(e.model, e.codes.length).add(e.codes, e.delta);
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
    return this.#log.floor(model);
  }

  /**
   * SIDs of `model` that became occupied (added) or empty (removed) after `since`, up to now; undefined when the
   * log no longer covers `since` (or since > lastSeq; `lastSeq`: what the tries reflect, sid-occupancy-reads.ts). A SID
   * that changed and changed back is in neither list.
   */
  delta(model: number, levels: number, since: bigint, lastSeq: bigint): SidDelta | undefined {
    if (since > lastSeq || since < this.floor(model)) return undefined;
    this.ensureTries();
    const sums = new Map<string, number>();
    this.#log.forEachEntry(model, levels, since, lastSeq, (value) => forEachChange(value, (bytes, at, L, delta) => {
      const name = bytes.toString('latin1', at, at + 2 * L);
      sums.set(name, (sums.get(name) ?? 0) + delta);
    }));
    const trie = this.#tries.get(model);
    const added: Int32Array[] = [];
    const removed: Int32Array[] = [];
    for (const [name, sum] of sums) {
      if (sum === 0) continue;
      const codes = codesAt(Buffer.from(name, 'latin1'), 0, levels);
      const now = trie?.count(codes) ?? 0;
      const was = now - sum;
      if (now > 0 && was <= 0) added.push(codes);
      else if (now === 0 && was > 0) removed.push(codes);
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
