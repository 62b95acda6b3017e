/**
 * A live in-memory copy of one key space's postings: answers the catalog's three candidate scans (`exact`, `prefix`,
 * `hamming1`) with the same results in the same order (store/catalog-scan.ts) without an LMDB cursor per call, and
 * follows every committed write (`apply`, fed by the catalog's posting journal). LMDB stays the source of truth: the
 * index is built from it at open and changed only after a commit.
 *
 * Layout (typed arrays only, nothing per item on the JS heap): a sorted run `main` of (SID, key) rows, codes as u16
 * (row-major, L per row) and keys as int64 (compared as two u32 words, so no bigint is made), with a bit per row
 * marking rows removed since it was built, plus a small sorted run `delta` of rows added since; each run also holds
 * its rotated orders (posting-rotations.ts: an int32 row number per row for each level but the last), the
 * counterpart of the catalog's rotated key spaces for Hamming-1. Bytes per item: 2L + 8 + 4(L-1) + 1/8 (22.1 at 3
 * levels: 2.2 GB at 100M items). A write batch marks its removed rows dead and merges its added rows into `delta` in
 * one pass (then re-sorts delta's rotated orders: counting sorts); once `delta` and the dead rows together exceed
 * DELTA_SHARE of `main` (at least MIN_DELTA, at most MAX_DELTA rows), both are folded into a new `main` in one linear
 * pass (it holds the old and the new `main` meanwhile).
 *
 * Scans binary-search both runs and merge them in the catalog's order, skipping dead rows. Inputs the catalog would
 * refuse or treat specially (another key space, a SID of another length, codes out of range, a bad limit) go to the
 * `fallback` scans (the catalog), so errors are the catalog's own.
 */
import { MAX_CODE } from '../sid/codec.ts';
import type { Neighbour } from '../store/catalog.ts';
import type { PostingChanges } from '../store/posting-journal.ts';
import type { SpacePostings } from '../store/catalog-scan.ts';
import type { CandidateSource } from './candidates.ts';
import { rotatedBound, rotations } from './posting-rotations.ts';

/** Receives a scan's rows: the row's key is keys[row], its words words[2 row] (low) and words[2 row + 1]. */
export interface RowSink {
  /** false: stop the scan. */
  row(keys: BigInt64Array, words: Uint32Array, row: number): boolean;
}

/** A RowSink that keeps the keys (growing as needed). */
class Collector implements RowSink {
  #words: Uint32Array;
  #n = 0;
  constructor(limit: number) {
    this.#words = new Uint32Array(2 * Math.max(1, Math.min(limit, 64)));
  }

  row(_keys: BigInt64Array, words: Uint32Array, row: number): boolean {
    if (2 * this.#n === this.#words.length) {
      const grown = new Uint32Array(2 * this.#words.length);
      grown.set(this.#words);
      this.#words = grown;
    }
    this.#words[2 * this.#n] = words[2 * row]!;
    this.#words[2 * this.#n + 1] = words[2 * row + 1]!;
    this.#n++;
    return true;
  }

  keys(): BigInt64Array {
    return new BigInt64Array(this.#words.buffer, 0, this.#n);
  }
}

/** A sorted run: `count` rows in (SID, key) order; `words` views `keys` as (low, high) u32 pairs. */
interface Run {
  count: number;
  codes: Uint16Array;
  keys: BigInt64Array;
  words: Uint32Array;
  /** Rotated orders (posting-rotations.ts) of main and delta; empty elsewhere. */
  rot: Int32Array[];
}

const DELTA_SHARE = 1 / 16;
const MIN_DELTA = 4096;
const MAX_DELTA = 1 << 20;
const WORD = 2 ** 32;

export class PostingIndex implements CandidateSource {
  readonly model: number;
  readonly levels: number;
  #fallback: CandidateSource;
  #main: Run;
  #dead: Uint8Array;
  #deadCount = 0;
  #delta: Run;
  #minDelta: number;
  /** Folds into `main` so far (tests and logs). */
  compactions = 0;

  /** `minDelta`: delta and dead rows below which no fold happens (default MIN_DELTA; tests lower it). */
  constructor(model: number, levels: number, postings: SpacePostings, fallback: CandidateSource, minDelta = MIN_DELTA) {
    this.model = model;
    this.levels = levels;
    this.#fallback = fallback;
    this.#minDelta = minDelta;
    this.#main = withRotations(runOf(postings.count, postings.codes, postings.keys), levels);
    this.#dead = new Uint8Array((postings.count + 7) >> 3);
    this.#delta = withRotations(newRun(0, levels), levels);
  }

  /** Live rows (items with a SID in this key space). */
  get count(): number {
    return this.#main.count - this.#deadCount + this.#delta.count;
  }

  /** Bytes held by the typed arrays. */
  get bytes(): number {
    const run = (r: Run) => r.codes.byteLength + r.keys.byteLength + r.rot.reduce((sum, p) => sum + p.byteLength, 0);
    return run(this.#main) + run(this.#delta) + this.#dead.byteLength;
  }

  exact(model: number, codes: Int32Array, limit: number): BigInt64Array {
    if (!this.accepts(model, codes, 0, codes.length, limit, true)) return this.#fallback.exact(model, codes, limit);
    return this.#collect(codes, codes.length, limit);
  }

  prefix(model: number, codesPrefix: Int32Array, limit: number): BigInt64Array {
    if (!this.accepts(model, codesPrefix, 0, codesPrefix.length, limit, false)) return this.#fallback.prefix(model, codesPrefix, limit);
    return this.#collect(codesPrefix, codesPrefix.length, limit);
  }

  /**
   * The rows `exact` (m = levels) or `prefix` of q[at..at+m) would return, in their order, passed to `sink.row`
   * until it returns false or `limit` rows were passed: the scans without a typed array per call (a beam query makes
   * a few hundred). For arguments `accepts` approves.
   */
  visit(q: Int32Array, at: number, m: number, limit: number, sink: RowSink): void {
    const L = this.levels;
    const main = this.#main;
    const delta = this.#delta;
    let a = bound(main, L, q, at, m, false, 0, main.count);
    const a1 = upperFrom(main, L, q, at, m, a, main.count);
    let b = bound(delta, L, q, at, m, false, 0, delta.count);
    const b1 = upperFrom(delta, L, q, at, m, b, delta.count);
    for (let n = 0; n < limit && (a < a1 || b < b1); n++) {
      while (a < a1 && this.#deadCount > 0 && this.#isDead(a)) a++;
      if (a >= a1 && b >= b1) return;
      const fromMain = b >= b1 || (a < a1 && compareRows(main, a, delta, b, L) < 0);
      if (!(fromMain ? sink.row(main.keys, main.words, a++) : sink.row(delta.keys, delta.words, b++))) return;
    }
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
      const pm = i < L - 1 ? main.rot[i]! : null;
      const pd = i < L - 1 ? delta.rot[i]! : null;
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
      this.#delta = withRotations(merged, L);
    }
    const limit = Math.min(MAX_DELTA, Math.max(this.#minDelta, Math.ceil(this.#main.count * DELTA_SHARE)));
    if (this.#delta.count + this.#deadCount > limit) this.#compact();
  }

  /** Folds `delta` into `main` and drops the dead rows. */
  #compact(): void {
    this.#main = withRotations(mergeRuns(this.#main, this.#deadCount > 0 ? (r) => this.#isDead(r) : undefined, this.#delta, this.levels, this.count), this.levels);
    this.#dead = new Uint8Array((this.#main.count + 7) >> 3);
    this.#deadCount = 0;
    this.#delta = withRotations(newRun(0, this.levels), this.levels);
    this.compactions++;
  }

  /** Keys of the rows under prefix q[0..m), both runs merged in (SID, key) order, at most `limit`. */
  #collect(q: Int32Array, m: number, limit: number): BigInt64Array {
    const main = this.#main;
    if (this.#delta.count === 0 && this.#deadCount === 0) {
      const a = bound(main, this.levels, q, 0, m, false, 0, main.count);
      return main.keys.slice(a, Math.min(upperFrom(main, this.levels, q, 0, m, a, main.count), a + limit));
    }
    const out = new Collector(limit);
    this.visit(q, 0, m, limit, out);
    return out.keys();
  }

  #isDead(row: number): boolean {
    return (this.#dead[row >> 3]! & (1 << (row & 7))) !== 0;
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

function runOf(count: number, codes: Uint16Array, keys: BigInt64Array): Run {
  return { count, codes, keys, words: new Uint32Array(keys.buffer, keys.byteOffset, 2 * count), rot: [] };
}

function withRotations(run: Run, L: number): Run {
  run.rot = rotations(run.codes, run.count, L);
  return run;
}

/** A zeroed run of `count` rows (`L` 0: keys only). */
function newRun(count: number, L: number): Run {
  return runOf(count, new Uint16Array(count * L), new BigInt64Array(count));
}

/** First row in [lo, hi) whose codes 0..m-1 are >= q[at..at+m) (> with `after`). */
function bound(run: Run, L: number, q: Int32Array, at: number, m: number, after: boolean, lo: number, hi: number): number {
  const codes = run.codes;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const base = mid * L;
    let d = 0;
    for (let j = 0; j < m && d === 0; j++) d = codes[base + j]! - q[at + j]!;
    if (d < 0 || (after && d === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * bound(…, after = true, lo, hi) where row `lo` is the range's first (a lower bound): gallops from it (ranges are
 * short next to the run), then bisects the last step.
 */
function upperFrom(run: Run, L: number, q: Int32Array, at: number, m: number, lo: number, hi: number): number {
  const codes = run.codes;
  let step = 1;
  let from = lo;
  for (;;) {
    const probe = lo + step;
    if (probe >= hi) break;
    let d = 0;
    for (let j = 0; j < m && d === 0; j++) d = codes[probe * L + j]! - q[at + j]!;
    if (d !== 0) break;
    from = probe;
    step *= 2;
  }
  return bound(run, L, q, at, m, true, from, Math.min(hi, lo + step));
}

/** First row in [lo, hi) not before (the SID at codes[at..at+L), the key with words hi:lo). */
function lowerRow(run: Run, L: number, codes: ArrayLike<number>, at: number, khi: number, klo: number, lo: number, hi: number): number {
  const rc = run.codes;
  const w = run.words;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    let d = 0;
    for (let j = 0; j < L && d === 0; j++) d = rc[mid * L + j]! - codes[at + j]!;
    if (d === 0) d = (w[2 * mid + 1]! - khi) * WORD + (w[2 * mid]! - klo);
    if (d < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Row of (codes, key hi:lo) in the run, or -1. */
function findRow(run: Run, L: number, codes: Int32Array, khi: number, klo: number): number {
  const r = lowerRow(run, L, codes, 0, khi, klo, 0, run.count);
  if (r >= run.count || run.words[2 * r] !== klo || run.words[2 * r + 1] !== khi) return -1;
  for (let j = 0; j < L; j++) if (run.codes[r * L + j] !== codes[j]) return -1;
  return r;
}

function compareRows(x: Run, i: number, y: Run, j: number, L: number): number {
  for (let l = 0; l < L; l++) {
    const d = x.codes[i * L + l]! - y.codes[j * L + l]!;
    if (d !== 0) return d;
  }
  return (x.words[2 * i + 1]! - y.words[2 * j + 1]!) * WORD + (x.words[2 * i]! - y.words[2 * j]!);
}

function sameCodes(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((c, l) => c === b[l]);
}

/** Copies rows [from, to) of `src` to row `w` of `dst` (codes only when `L` > 0); returns the next row to write. */
function copyRows(src: Run, from: number, to: number, dst: Run, w: number, L: number): number {
  if (to <= from) return w;
  if (L > 0) dst.codes.set(src.codes.subarray(from * L, to * L), w * L);
  dst.words.set(src.words.subarray(2 * from, 2 * to), 2 * w);
  return w + to - from;
}

/** copyRows for one row. */
function copyRow(src: Run, i: number, dst: Run, w: number, L: number): number {
  for (let l = 0; l < L; l++) dst.codes[w * L + l] = src.codes[i * L + l]!;
  dst.words[2 * w] = src.words[2 * i]!;
  dst.words[2 * w + 1] = src.words[2 * i + 1]!;
  return w + 1;
}

/** The added rows of a batch, sorted; throws on a row added twice. */
function sortedAdds(changes: PostingChanges, added: number[], L: number): Run {
  const n = added.length;
  const run = newRun(n, L);
  added.forEach((c, r) => {
    run.codes.set(changes.codes(c), r * L);
    run.keys[r] = changes.key(c);
  });
  const order = Array.from({ length: n }, (_, r) => r).sort((a, b) => compareRows(run, a, run, b, L));
  const sorted = newRun(n, L);
  order.forEach((r, w) => copyRow(run, r, sorted, w, L));
  for (let r = 1; r < n; r++) if (compareRows(sorted, r - 1, sorted, r, L) === 0) throw new Error(`posting index: key ${sorted.keys[r]} added twice`);
  return sorted;
}

/**
 * A new run of `base`'s rows (but those `skip` flags) and `adds`'s rows (both sorted), `count` in all: `base` in
 * spans copied whole, each row of `adds` placed by binary search (adds are the smaller run).
 */
function mergeRuns(base: Run, skip: ((row: number) => boolean) | undefined, adds: Run, L: number, count: number): Run {
  const out = newRun(count, L);
  let w = 0;
  const copyBase = (from: number, to: number) => {
    if (!skip) {
      w = copyRows(base, from, to, out, w, L);
      return;
    }
    let s = from;
    while (s < to) {
      while (s < to && skip(s)) s++;
      let e = s;
      while (e < to && !skip(e)) e++;
      w = copyRows(base, s, e, out, w, L);
      s = e;
    }
  };
  let a = 0;
  for (let b = 0; b < adds.count; b++) {
    const at = lowerRow(base, L, adds.codes, b * L, adds.words[2 * b + 1]!, adds.words[2 * b]!, a, base.count);
    copyBase(a, at);
    a = at;
    w = copyRow(adds, b, out, w, L);
  }
  copyBase(a, base.count);
  if (w !== count) throw new Error(`posting index: merged ${w} rows, expected ${count}`);
  return out;
}
