/**
 * A live in-memory copy of one key space's postings: answers the catalog's three candidate scans (`exact`, `prefix`,
 * `hamming1`) with the same results in the same order (store/catalog-scan.ts) without an LMDB cursor per call, and
 * follows every committed write (`apply`, fed by the catalog's posting journal). LMDB stays the source of truth: the
 * index is built from it at open and changed only after a commit.
 *
 * Layout (typed arrays only, nothing per item on the JS heap): a sorted run `main` of (SID, key) rows, codes as u16
 * (row-major, L per row) and keys as int64, with a bit per row marking rows removed since it was built, plus a small
 * sorted run `delta` of rows added since. Bytes per item: 2L + 8 + 1/8 (14.1 at 3 levels; 1.4 GB at 100M items).
 * A write batch marks its removed rows dead and merges its added rows into `delta` in one pass; once `delta` and the
 * dead rows together exceed DELTA_SHARE of `main` (at least MIN_DELTA, at most MAX_DELTA rows), both are folded
 * into a new `main` (one linear pass).
 *
 * Scans binary-search both runs and merge them in (SID, key) order, skipping dead rows. Hamming-1 at position i:
 * the rows sharing codes 0..i-1 form one range of the natural order, grouped by code i; each group's rows with the
 * query's codes i+1.. are one exact-SID range, in key order: the catalog's order (position L-1 first, then code,
 * then key). Inputs the catalog would refuse or treat specially (another key space, a SID of another length, codes
 * out of range, a bad limit) go to the `fallback` scans (the catalog), so errors are the catalog's own.
 */
import { MAX_CODE } from '../sid/codec.ts';
import type { Neighbour } from '../store/catalog.ts';
import type { PostingChanges } from '../store/posting-journal.ts';
import type { SpacePostings } from '../store/catalog-scan.ts';
import type { CandidateSource } from './candidates.ts';

/** A sorted run: `count` rows in (SID, key) order. */
interface Run {
  count: number;
  codes: Uint16Array;
  keys: BigInt64Array;
}

const DELTA_SHARE = 1 / 16;
const MIN_DELTA = 4096;
const MAX_DELTA = 1 << 20;

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
    this.#main = postings;
    this.#dead = new Uint8Array((postings.count + 7) >> 3);
    this.#delta = emptyRun();
  }

  /** Live rows (items with a SID in this key space). */
  get count(): number {
    return this.#main.count - this.#deadCount + this.#delta.count;
  }

  /** Bytes held by the typed arrays. */
  get bytes(): number {
    const run = (r: Run) => r.codes.byteLength + r.keys.byteLength;
    return run(this.#main) + run(this.#delta) + this.#dead.byteLength;
  }

  exact(model: number, codes: Int32Array, limit: number): BigInt64Array {
    if (!this.#plain(model, codes, limit, true)) return this.#fallback.exact(model, codes, limit);
    return this.#collect(codes, codes.length, limit);
  }

  prefix(model: number, codesPrefix: Int32Array, limit: number): BigInt64Array {
    if (!this.#plain(model, codesPrefix, limit, false)) return this.#fallback.prefix(model, codesPrefix, limit);
    return this.#collect(codesPrefix, codesPrefix.length, limit);
  }

  hamming1(model: number, codes: Int32Array, limit: number): Neighbour[] {
    if (!this.#plain(model, codes, limit, true)) return this.#fallback.hamming1(model, codes, limit);
    const L = this.levels;
    const main = this.#main;
    const delta = this.#delta;
    const q = codes.slice();
    const out: Neighbour[] = [];
    for (let i = L - 1; i >= 0 && out.length < limit; i--) {
      q.set(codes);
      // Rows sharing codes 0..i-1, grouped by code i (ascending) in each run.
      let m = bound(main, L, q, i, false, 0, main.count);
      const mEnd = bound(main, L, q, i, true, m, main.count);
      let d = bound(delta, L, q, i, false, 0, delta.count);
      const dEnd = bound(delta, L, q, i, true, d, delta.count);
      while (out.length < limit && (m < mEnd || d < dEnd)) {
        const cm = m < mEnd ? main.codes[m * L + i]! : MAX_CODE + 1;
        const cd = d < dEnd ? delta.codes[d * L + i]! : MAX_CODE + 1;
        const c = Math.min(cm, cd);
        q[i] = c;
        const m1 = cm === c ? bound(main, L, q, i + 1, true, m, mEnd) : m;
        const d1 = cd === c ? bound(delta, L, q, i + 1, true, d, dEnd) : d;
        if (c !== codes[i]) {
          const a0 = bound(main, L, q, L, false, m, m1);
          const b0 = bound(delta, L, q, L, false, d, d1);
          const keys = this.#merge(a0, bound(main, L, q, L, true, a0, m1), b0, bound(delta, L, q, L, true, b0, d1), limit - out.length);
          for (const key of keys) out.push({ key, codes: q.slice(), position: i });
        }
        m = m1;
        d = d1;
      }
    }
    return out;
  }

  /**
   * Applies one committed transaction's changes to this key space (others are skipped). Throws when they do not fit
   * the index (a removed row it does not hold, a row added twice): the caller then stops using it.
   */
  apply(changes: PostingChanges): void {
    const L = this.levels;
    const adds: number[] = [];
    const ids: string[] = [];
    /** This batch's adds by row, so that a later remove in the same batch cancels its add. */
    const pending = new Map<string, number>();
    const dropDelta = new Uint8Array(this.#delta.count);
    let dropped = 0;
    for (let c = 0; c < changes.length; c++) {
      if (changes.model(c) !== this.model) continue;
      const codes = changes.codes(c);
      const key = changes.key(c);
      if (codes.length !== L) throw new Error(`posting index: a ${codes.length}-level SID in a ${L}-level key space`);
      const id = `${key}/${codes.join(',')}`;
      const r = findRow(this.#delta, L, codes, 0, key);
      const inDelta = r >= 0 && dropDelta[r] === 0;
      if (!changes.removed(c)) {
        if (pending.has(id) || inDelta || this.#liveInMain(codes, key) >= 0) throw new Error(`posting index: key ${key} added twice under ${codes.join('-')}`);
        pending.set(id, c);
        adds.push(c);
        ids.push(id);
      } else if (pending.delete(id)) {
        continue;
      } else if (inDelta) {
        dropDelta[r] = 1;
        dropped++;
      } else {
        const s = this.#liveInMain(codes, key);
        if (s < 0) throw new Error(`posting index: key ${key} under ${codes.join('-')} is not held`);
        this.#dead[s >> 3]! |= 1 << (s & 7);
        this.#deadCount++;
      }
    }
    const added = adds.filter((c, j) => pending.get(ids[j]!) === c);
    if (added.length > 0 || dropped > 0) this.#delta = mergeIntoDelta(this.#delta, dropDelta, runOf(changes, added, L), L);
    const limit = Math.min(MAX_DELTA, Math.max(this.#minDelta, Math.ceil(this.#main.count * DELTA_SHARE)));
    if (this.#delta.count + this.#deadCount > limit) this.#compact();
  }

  /** Folds `delta` into `main` and drops the dead rows. */
  #compact(): void {
    const L = this.levels;
    const main = this.#main;
    const delta = this.#delta;
    const n = this.count;
    const out: Run = { count: n, codes: new Uint16Array(n * L), keys: new BigInt64Array(n) };
    let w = 0;
    const copyMain = (from: number, to: number) => {
      let s = from;
      while (s < to) {
        while (s < to && this.#isDead(s)) s++;
        let e = s;
        if (this.#deadCount === 0) e = to;
        else while (e < to && !this.#isDead(e)) e++;
        w = copyRows(main, s, e, out, w, L);
        s = e;
      }
    };
    let a = 0;
    for (let b = 0; b < delta.count; b++) {
      const at = lowerRow(main, L, delta.codes, b * L, delta.keys[b]!, a, main.count);
      copyMain(a, at);
      a = at;
      w = copyRows(delta, b, b + 1, out, w, L);
    }
    copyMain(a, main.count);
    this.#main = out;
    this.#dead = new Uint8Array((n + 7) >> 3);
    this.#deadCount = 0;
    this.#delta = emptyRun();
    this.compactions++;
  }

  /** Keys of the rows under prefix q[0..m), both runs merged in (SID, key) order, at most `limit`. */
  #collect(q: Int32Array, m: number, limit: number): BigInt64Array {
    const L = this.levels;
    const main = this.#main;
    const delta = this.#delta;
    const a0 = bound(main, L, q, m, false, 0, main.count);
    const b0 = bound(delta, L, q, m, false, 0, delta.count);
    return this.#merge(a0, bound(main, L, q, m, true, a0, main.count), b0, bound(delta, L, q, m, true, b0, delta.count), limit);
  }

  /** Keys of main rows [a, a1) (live ones) and delta rows [b, b1), which share a prefix, merged in (SID, key) order. */
  #merge(a: number, a1: number, b: number, b1: number, limit: number): BigInt64Array {
    const main = this.#main;
    const delta = this.#delta;
    if (b === b1 && this.#deadCount === 0) return main.keys.slice(a, Math.min(a1, a + Math.max(0, limit)));
    const out = new BigInt64Array(Math.max(0, Math.min(limit, a1 - a + b1 - b)));
    let n = 0;
    while (n < out.length && (a < a1 || b < b1)) {
      if (a < a1 && this.#isDead(a)) a++;
      else if (b >= b1 || (a < a1 && compareRows(main, a, delta, b, this.levels) < 0)) out[n++] = main.keys[a++]!;
      else out[n++] = delta.keys[b++]!;
    }
    return n === out.length ? out : out.slice(0, n);
  }

  #isDead(row: number): boolean {
    return (this.#dead[row >> 3]! & (1 << (row & 7))) !== 0;
  }

  /** Main's live row (codes, key), or -1. */
  #liveInMain(codes: Int32Array, key: bigint): number {
    const s = findRow(this.#main, this.levels, codes, 0, key);
    return s >= 0 && !this.#isDead(s) ? s : -1;
  }

  /** The plain case this index answers itself: its key space, a SID (or prefix) of valid codes, a valid limit. */
  #plain(model: number, codes: Int32Array, limit: number, whole: boolean): boolean {
    if (model !== this.model || !(codes instanceof Int32Array) || !Number.isSafeInteger(limit) || limit < 0) return false;
    if (whole ? codes.length !== this.levels : codes.length > this.levels) return false;
    for (let l = 0; l < codes.length; l++) if (codes[l]! < 0 || codes[l]! > MAX_CODE) return false;
    return true;
  }
}

function emptyRun(): Run {
  return { count: 0, codes: new Uint16Array(0), keys: new BigInt64Array(0) };
}

/** First row in [lo, hi) whose codes 0..m-1 are >= q's (> with `after`). */
function bound(run: Run, L: number, q: ArrayLike<number>, m: number, after: boolean, lo: number, hi: number): number {
  const codes = run.codes;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const base = mid * L;
    let d = 0;
    for (let j = 0; j < m && d === 0; j++) d = codes[base + j]! - q[j]!;
    if (d < 0 || (after && d === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First row in [lo, hi) not before (sid at codes[at..at+L), key). */
function lowerRow(run: Run, L: number, codes: ArrayLike<number>, at: number, key: bigint, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    let d = 0;
    for (let j = 0; j < L && d === 0; j++) d = run.codes[mid * L + j]! - codes[at + j]!;
    if (d < 0 || (d === 0 && run.keys[mid]! < key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Row of (sid, key) in the run, or -1. */
function findRow(run: Run, L: number, codes: ArrayLike<number>, at: number, key: bigint): number {
  const r = lowerRow(run, L, codes, at, key, 0, run.count);
  if (r >= run.count || run.keys[r] !== key) return -1;
  for (let j = 0; j < L; j++) if (run.codes[r * L + j] !== codes[at + j]) return -1;
  return r;
}

function compareRows(x: Run, i: number, y: Run, j: number, L: number): number {
  for (let l = 0; l < L; l++) {
    const d = x.codes[i * L + l]! - y.codes[j * L + l]!;
    if (d !== 0) return d;
  }
  const a = x.keys[i]!;
  const b = y.keys[j]!;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Copies rows [from, to) of `src` to row `w` of `dst`; returns the next row to write. */
function copyRows(src: Run, from: number, to: number, dst: Run, w: number, L: number): number {
  if (to <= from) return w;
  dst.codes.set(src.codes.subarray(from * L, to * L), w * L);
  dst.keys.set(src.keys.subarray(from, to), w);
  return w + to - from;
}

/** The added rows of a batch, sorted. */
function runOf(changes: PostingChanges, added: number[], L: number): Run {
  const n = added.length;
  const run: Run = { count: n, codes: new Uint16Array(n * L), keys: new BigInt64Array(n) };
  added.forEach((c, r) => {
    run.codes.set(changes.codes(c), r * L);
    run.keys[r] = changes.key(c);
  });
  const order = Array.from({ length: n }, (_, r) => r).sort((a, b) => compareRows(run, a, run, b, L));
  const sorted: Run = { count: n, codes: new Uint16Array(n * L), keys: new BigInt64Array(n) };
  order.forEach((r, w) => copyRows(run, r, r + 1, sorted, w, L));
  return sorted;
}

/** `delta` without its dropped rows, merged with `adds` (both sorted), as a new run. */
function mergeIntoDelta(delta: Run, drop: Uint8Array, adds: Run, L: number): Run {
  let kept = delta.count;
  for (let r = 0; r < delta.count; r++) kept -= drop[r]!;
  const n = kept + adds.count;
  const out: Run = { count: n, codes: new Uint16Array(n * L), keys: new BigInt64Array(n) };
  let w = 0;
  let b = 0;
  for (let a = 0; a < delta.count; a++) {
    if (drop[a]) continue;
    while (b < adds.count && compareRows(adds, b, delta, a, L) < 0) {
      w = copyRows(adds, b, b + 1, out, w, L);
      b++;
    }
    w = copyRows(delta, a, a + 1, out, w, L);
  }
  copyRows(adds, b, adds.count, out, w, L);
  return out;
}
