/**
 * A live in-memory copy of one key space's postings: answers the catalog's three candidate scans (`exact`, `prefix`,
 * `hamming1`) with the same results in the same order (store/catalog-scan.ts) without an LMDB cursor per call, and
 * follows every committed write (`apply`, fed by the catalog's posting journal). LMDB stays the source of truth: the
 * index is built from it at open and changed only after a commit.
 *
 * Layout (typed arrays only, nothing per item on the JS heap; posting-runs.ts): a sorted run `main` of (SID, key)
 * rows, codes as u16 (row-major, L per row) and keys as int64 (compared as two u32 words, so no bigint is made), with a bit per row
 * marking rows removed since it was built, plus a small sorted run `delta` of rows added since; each run also holds
 * its rotated orders (posting-rotations.ts: an int32 row number per row for each level but the last), the
 * counterpart of the catalog's rotated key spaces for Hamming-1. Bytes per item: 2L + 8 + 4(L-1) + 1/8 (22.1 at 3
 * levels: 2.2 GB at 100M items). A write batch marks its removed rows dead and merges its added rows into `delta` in
 * one pass (delta's rotated orders, counting sorts, are rebuilt by the next Hamming-1 scan that needs them); once
 * `delta` and the dead rows together exceed DELTA_SHARE of `main` (at least MIN_DELTA, at most MAX_DELTA rows), both
 * are folded into a new `main` in one linear pass (it holds the old and the new `main` meanwhile).
 *
 * Scans find their rows in `main` through its directory of code prefixes (posting-directory.ts: 256 KB at 3 levels
 * of 256 codes, rebuilt with `main`) and a binary search within a cell, in `delta` by binary search, and merge both
 * runs in the catalog's order, skipping dead rows. Inputs the catalog would
 * refuse or treat specially (another key space, a SID of another length, codes out of range, a bad limit) go to the
 * `fallback` scans (the catalog), so errors are the catalog's own.
 */
import { MAX_CODE } from '../sid/codec.ts';
import { loadFaissBinding } from '../vector/binding.ts';
import type { Neighbour } from '../store/catalog.ts';
import type { PostingChanges } from '../store/posting-journal.ts';
import type { SpacePostings } from '../store/catalog-scan.ts';
import type { BeamLevel } from '../tokenizer/encoder-pool.ts';
import type { CandidateSet } from './candidate-set.ts';
import type { CandidateSource } from './candidates.ts';
import { cellStart, directoryOf, type Directory } from './posting-directory.ts';
import { rotatedBound } from './posting-rotations.ts';
import { foldRuns, isDeadRow, rowsOf, type Folded, type FoldInput } from './posting-fold.ts';
import type { FoldThread } from './posting-fold-thread.ts';
import { bound, Collector, compareRows, findRow, mergeRuns, newRun, rotatedOrders, runOf, sameCodes, sharedRun, sortedAdds, upperFrom, withRotations, type Run, type RowSink } from './posting-runs.ts';

export type { RowSink } from './posting-runs.ts';



const DELTA_SHARE = 1 / 16;
const MIN_DELTA = 4096;
const MAX_DELTA = 1 << 20;

/**
 * Folds on a thread (posting-fold-thread.ts) for a main run of at least `minRows` rows: the index keeps answering
 * from its runs meanwhile, records the changes it applies, and replays them on the folded run when it comes back;
 * `onFailure` gets a replay that failed (the index is then wrong: its owner drops it). Smaller runs fold in place.
 */
export interface FoldOptions {
  thread: FoldThread;
  minRows: number;
  onFailure: (err: Error) => void;
  /** A fold the thread could not run (it is done in place then). */
  onThreadError?: (err: Error) => void;
}
/** gatherBeam's level widths (one array reused: the call is synchronous). */
let gatherWidths = new Int32Array(0);

export class PostingIndex implements CandidateSource {
  readonly model: number;
  readonly levels: number;
  #fallback: CandidateSource;
  #main: Run;
  /** Where main's code prefixes start (posting-directory.ts). */
  #dir: Directory | undefined;
  /** The end of the rows #mainRows found. */
  #end = 0;
  #dead: Uint8Array;
  #deadCount = 0;
  #delta: Run;
  #minDelta: number;
  #folds: FoldOptions | undefined;
  /** The fold out on the thread: the changes applied since its snapshot, and its end (swapped in, or failed). */
  #folding: { log: PostingChanges[]; done: Promise<void> } | null = null;
  /** Folds into `main` so far (tests and logs). */
  compactions = 0;

  /** `minDelta`: delta and dead rows below which no fold happens (default MIN_DELTA; tests lower it). */
  constructor(model: number, levels: number, postings: SpacePostings, fallback: CandidateSource, minDelta = MIN_DELTA, folds?: FoldOptions) {
    this.model = model;
    this.levels = levels;
    this.#fallback = fallback;
    this.#minDelta = minDelta;
    this.#folds = folds;
    this.#main = withRotations(runOf(postings.count, postings.codes, postings.keys), levels);
    this.#dir = directoryOf(this.#main, levels);
    this.#dead = new Uint8Array((postings.count + 7) >> 3);
    this.#delta = newRun(0, levels);
  }

  /** The fold on the thread in progress, settled once its run is swapped in (or it failed); null when none is. */
  get folding(): Promise<void> | null {
    return this.#folding?.done ?? null;
  }

  /** Stops following a fold on the thread (the index is no longer used): its result is dropped. */
  detach(): void {
    this.#folding = null;
  }

  /** Live rows (items with a SID in this key space). */
  get count(): number {
    return this.#main.count - this.#deadCount + this.#delta.count;
  }

  /** Bytes held by the typed arrays. */
  get bytes(): number {
    const run = (r: Run) => r.codes.byteLength + r.keys.byteLength + (r.rot ?? []).reduce((sum, p) => sum + p.byteLength, 0);
    return run(this.#main) + run(this.#delta) + this.#dead.byteLength + (this.#dir?.starts.byteLength ?? 0);
  }

  exact(model: number, codes: Int32Array, limit: number): BigInt64Array {
    if (!this.accepts(model, codes, 0, codes.length, limit, true)) return this.#fallback.exact(model, codes, limit);
    return this.#collect(codes, codes.length, limit);
  }

  prefix(model: number, codesPrefix: Int32Array, limit: number): BigInt64Array {
    if (!this.accepts(model, codesPrefix, 0, codesPrefix.length, limit, false)) return this.#fallback.prefix(model, codesPrefix, limit);
    return this.#collect(codesPrefix, codesPrefix.length, limit);
  }

  /** One past the largest first-level code of any row (0 without rows): the first-level prefixes a full visit spans. */
  get firstCodeEnd(): number {
    const L = this.levels;
    const last = (r: Run) => (r.count === 0 ? 0 : r.codes[(r.count - 1) * L]! + 1);
    return L === 0 ? 0 : Math.max(last(this.#main), last(this.#delta));
  }

  /**
   * The rows `exact` (m = levels) or `prefix` of q[at..at+m) would return, in their order, passed to `sink.rows` in
   * spans of one run until it returns false or `limit` rows were passed: the scans without a typed array per call
   * (a beam query makes a few hundred). Without delta and dead rows (an index as built) that is one span. For
   * arguments `accepts` approves.
   */
  visit(q: Int32Array, at: number, m: number, limit: number, sink: RowSink): void {
    const L = this.levels;
    const main = this.#main;
    const delta = this.#delta;
    let a = this.#mainRows(q, at, m);
    const a1 = this.#end;
    const dead = this.#deadCount > 0;
    if (delta.count === 0 && !dead) {
      const end = Math.min(a1, a + limit);
      if (a < end) sink.rows(main.words, a, end);
      return;
    }
    let b = bound(delta, L, q, at, m, false, 0, delta.count);
    const b1 = upperFrom(delta, L, q, at, m, b, delta.count);
    for (let left = limit; left > 0;) {
      if (dead) while (a < a1 && this.#isDead(a)) a++;
      if (a >= a1 && b >= b1) return;
      let e: number;
      if (b < b1 && (a >= a1 || compareRows(main, a, delta, b, L) >= 0)) {
        // Delta's rows up to main's next live one.
        for (e = b + 1; e < b1 && e - b < left && (a >= a1 || compareRows(main, a, delta, e, L) >= 0); e++);
        if (!sink.rows(delta.words, b, e)) return;
        left -= e - b;
        b = e;
      } else {
        // Main's live rows up to delta's next one.
        for (e = a + 1; e < a1 && e - a < left && !(dead && this.#isDead(e)) && (b >= b1 || compareRows(main, e, delta, b, L) < 0); e++);
        if (!sink.rows(main.words, a, e)) return;
        left -= e - a;
        a = e;
      }
    }
  }

  /**
   * gatherCandidates' expand "beam" (the `exact` SIDs, then the beam's levels, deepest first) into `out`, in one
   * native call over this index's arrays (native/src/posting_gather.cc): the same candidates in the same order as
   * the scans through `visit`, without a JS call per scan. False when it gathered nothing (another key space, an
   * exact SID of another length, a code out of range): the caller then scans in JS, which gives the catalog's errors.
   */
  gatherBeam(model: number, exact: readonly Int32Array[], beam: readonly BeamLevel[], maxCandidates: number, stop: number, out: CandidateSet): boolean {
    if (model !== this.model || beam.length !== this.levels) return false;
    const main = this.#main;
    const delta = this.#delta;
    const dir = this.#dir;
    const widths = gatherWidths.length === beam.length ? gatherWidths : (gatherWidths = new Int32Array(beam.length));
    for (let l = 0; l < beam.length; l++) widths[l] = beam[l]!.width;
    const codes = beam.map((level) => level.codes);
    return out.fillWith(Math.min(stop, maxCandidates), (words, match, table, counts, count) => loadFaissBinding().gatherBeam(
      main.codes, main.words, main.count, delta.codes, delta.words, delta.count, this.#deadCount > 0 ? this.#dead : null,
      dir?.starts ?? null, dir?.depth ?? 0, dir?.radix ?? 0, this.levels, exact, codes, widths, maxCandidates, stop,
      words, match, table, counts, count));
  }

  /**
   * Neighbours at position L-1 first, then L-2, ...: at each, rows equal to `codes` but there (one range of each run's
   * rotated order), in (code, key) order, the query's own code left out; at most `limit` in all.
   */
  hamming1(model: number, codes: Int32Array, limit: number): Neighbour[] {
    if (!this.accepts(model, codes, 0, codes.length, limit, true)) return this.#fallback.hamming1(model, codes, limit);
    const L = this.levels;
    const main = this.#main;
    const delta = this.#delta;
    const out: Neighbour[] = [];
    for (let i = L - 1; i >= 0 && out.length < limit; i--) {
      const pm = i < L - 1 ? rotatedOrders(main, L)[i]! : null;
      const pd = i < L - 1 ? rotatedOrders(delta, L)[i]! : null;
      let a = rotatedBound(main.codes, L, pm, codes, i, false, 0, main.count);
      const a1 = rotatedBound(main.codes, L, pm, codes, i, true, a, main.count);
      let b = rotatedBound(delta.codes, L, pd, codes, i, false, 0, delta.count);
      const b1 = rotatedBound(delta.codes, L, pd, codes, i, true, b, delta.count);
      const own = codes[i]!;
      while (out.length < limit) {
        let ra = -1;
        let rb = -1;
        for (; a < a1; a++) {
          ra = pm ? pm[a]! : a;
          if (!this.#isDead(ra) && main.codes[ra * L + i] !== own) break;
        }
        for (; b < b1; b++) {
          rb = pd ? pd[b]! : b;
          if (delta.codes[rb * L + i] !== own) break;
        }
        if (a >= a1 && b >= b1) break;
        const fromMain = b >= b1 || (a < a1 && compareRows(main, ra, delta, rb, L) < 0);
        const run = fromMain ? main : delta;
        const row = fromMain ? ra : rb;
        if (fromMain) a++;
        else b++;
        const neighbour = codes.slice();
        neighbour[i] = run.codes[row * L + i]!;
        out.push({ key: run.keys[row]!, codes: neighbour, position: i });
      }
    }
    return out;
  }

  /**
   * Applies one committed transaction's changes to this key space (others are skipped), in order. Throws when they do
   * not fit the index (a removed row it does not hold, a row added twice): the caller then stops using it.
   */
  apply(changes: PostingChanges): void {
    this.#folding?.log.push(changes);
    this.#applyChanges(changes);
    this.#maybeFold();
  }

  #applyChanges(changes: PostingChanges): void {
    const L = this.levels;
    const adds: number[] = [];
    const dropDelta = new Uint8Array(this.#delta.count);
    let dropped = 0;
    for (let c = 0; c < changes.length; c++) {
      if (changes.model(c) !== this.model) continue;
      const codes = changes.codes(c);
      const key = changes.key(c);
      if (codes.length !== L) throw new Error(`posting index: a ${codes.length}-level SID in a ${L}-level key space`);
      const hi = Number(key >> 32n);
      const lo = Number(key & 0xffffffffn);
      const r = findRow(this.#delta, L, codes, hi, lo);
      const inDelta = r >= 0 && dropDelta[r] === 0;
      if (!changes.removed(c)) {
        if (inDelta || this.#liveInMain(codes, hi, lo) >= 0) throw new Error(`posting index: key ${key} added twice under ${codes.join('-')}`);
        adds.push(c);
      } else if (inDelta) {
        dropDelta[r] = 1;
        dropped++;
      } else {
        const s = this.#liveInMain(codes, hi, lo);
        if (s >= 0) {
          this.#dead[s >> 3]! |= 1 << (s & 7);
          this.#deadCount++;
          continue;
        }
        // Added earlier in this transaction (rare: no write path adds and removes one row in one transaction today).
        let a = adds.length - 1;
        while (a >= 0 && !(changes.key(adds[a]!) === key && sameCodes(changes.codes(adds[a]!), codes))) a--;
        if (a < 0) throw new Error(`posting index: key ${key} under ${codes.join('-')} is not held`);
        adds.splice(a, 1);
      }
    }
    if (adds.length > 0 || dropped > 0) {
      const delta = this.#delta;
      const merged = mergeRuns(delta, dropped > 0 ? (r) => dropDelta[r] === 1 : undefined, sortedAdds(changes, adds, L), L, delta.count - dropped + adds.length);
      this.#delta = merged; // its rotated orders wait for the next Hamming-1 scan: most batches meet none
    }
  }

  #maybeFold(): void {
    if (this.#folding) return;
    const limit = Math.min(MAX_DELTA, Math.max(this.#minDelta, Math.ceil(this.#main.count * DELTA_SHARE)));
    if (this.#delta.count + this.#deadCount <= limit) return;
    if (this.#folds && this.#main.count >= this.#folds.minRows) this.#foldOnThread(this.#folds);
    else this.#foldInPlace();
  }

  /** The fold's input as the runs are now; `shared` (for the thread): the result on shared memory, the dead bits a copy. */
  #foldInput(shared: boolean): FoldInput {
    const dead = this.#deadCount === 0 ? null : shared ? this.#dead.slice() : this.#dead;
    return { levels: this.levels, main: rowsOf(this.#main), dead, delta: rowsOf(this.#delta), count: this.count, shared };
  }

  #foldInPlace(): void {
    this.#install(foldRuns(this.#foldInput(false)));
  }

  /** The fold of the runs as they are now, on the thread; the changes applied meanwhile are replayed on its result. */
  #foldOnThread(folds: FoldOptions): void {
    this.#main = sharedRun(this.#main, this.levels); // once: folded runs come back shared
    const input = this.#foldInput(true);
    const folding: { log: PostingChanges[]; done: Promise<void> } = { log: [], done: Promise.resolve() };
    this.#folding = folding;
    folding.done = folds.thread.fold(input).then((folded) => {
      if (this.#folding !== folding) return;
      this.#folding = null;
      this.#install(folded);
      for (const changes of folding.log) this.#applyChanges(changes);
      this.#maybeFold();
    }, (err: Error) => {
      // The thread failed: the fold in place, of the runs as they are by now (the next fold tries a new thread).
      if (this.#folding !== folding) return;
      this.#folding = null;
      folds.onThreadError?.(err);
      this.#foldInPlace();
    }).catch((err: Error) => folds.onFailure(err));
  }

  /** The folded run as `main`, with no dead rows and an empty delta. */
  #install(folded: Folded): void {
    this.#main = folded.main;
    this.#dir = folded.dir;
    this.#dead = new Uint8Array((this.#main.count + 7) >> 3);
    this.#deadCount = 0;
    this.#delta = newRun(0, this.levels);
    this.compactions++;
  }

  /** Keys of the rows under prefix q[0..m), both runs merged in (SID, key) order, at most `limit`. */
  #collect(q: Int32Array, m: number, limit: number): BigInt64Array {
    const main = this.#main;
    if (this.#delta.count === 0 && this.#deadCount === 0) {
      const a = this.#mainRows(q, 0, m);
      return main.keys.slice(a, Math.min(this.#end, a + limit));
    }
    const out = new Collector(limit);
    this.visit(q, 0, m, limit, out);
    return out.keys();
  }

  /** Main's rows under the prefix q[at..at+m): returns the first, sets #end past the last. */
  #mainRows(q: Int32Array, at: number, m: number): number {
    const main = this.#main;
    const dir = this.#dir;
    let lo = 0;
    let hi = main.count;
    if (dir) {
      const k = Math.min(m, dir.depth);
      const start = cellStart(dir, q, at, k, false);
      if (start >= 0) {
        lo = start;
        hi = cellStart(dir, q, at, k, true);
        if (k === m) {
          this.#end = hi;
          return lo;
        }
      }
    }
    const a = bound(main, this.levels, q, at, m, false, lo, hi);
    this.#end = upperFrom(main, this.levels, q, at, m, a, hi);
    return a;
  }

  #isDead(row: number): boolean {
    return isDeadRow(this.#dead, row);
  }

  /** Main's live row (codes, key), or -1. */
  #liveInMain(codes: Int32Array, hi: number, lo: number): number {
    const s = findRow(this.#main, this.levels, codes, hi, lo);
    return s >= 0 && !this.#isDead(s) ? s : -1;
  }

  /**
   * Whether this index answers an exact (`whole`) or prefix scan of codes[at..at+m) itself (its key space, a SID or
   * prefix of valid codes, a valid limit); other arguments go to the catalog, whose errors they get.
   */
  accepts(model: number, codes: Int32Array, at: number, m: number, limit: number, whole: boolean): boolean {
    if (model !== this.model || !(codes instanceof Int32Array) || !Number.isSafeInteger(limit) || limit < 0) return false;
    if (whole ? m !== this.levels : m > this.levels) return false;
    for (let l = at; l < at + m; l++) if (!(codes[l]! >= 0 && codes[l]! <= MAX_CODE)) return false;
    return true;
  }
}
