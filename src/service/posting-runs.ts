/**
 * Sorted runs of (SID, key) rows in typed arrays, the building blocks of the live posting index (posting-index.ts):
 * codes as u16, row-major, L per row; keys as int64, compared through their (low, high) u32 words so that no bigint
 * is made; binary searches over code prefixes, the merge of a run with a smaller sorted one, the sort of a write
 * batch's added rows.
 */
import type { PostingChanges } from '../store/posting-journal.ts';
import { rotations } from './posting-rotations.ts';

/** Receives a scan's rows, in order, a span of one run at a time: row r's key has words words[2r] (low), words[2r + 1]. */
export interface RowSink {
  /** Rows [from, to) (to > from); false: stop the scan. */
  rows(words: Uint32Array, from: number, to: number): boolean;
}

/** A sorted run: `count` rows in (SID, key) order; `words` views `keys` as (low, high) u32 pairs. */
export interface Run {
  count: number;
  codes: Uint16Array;
  keys: BigInt64Array;
  words: Uint32Array;
  /** Rotated orders (posting-rotations.ts) of main and delta, once built (`rotatedOrders`); undefined until then. */
  rot: Int32Array[] | undefined;
}

const WORD = 2 ** 32;

/** A RowSink that keeps the keys (growing as needed). */
export class Collector implements RowSink {
  #words: Uint32Array;
  #n = 0;
  constructor(limit: number) {
    this.#words = new Uint32Array(2 * Math.max(1, Math.min(limit, 64)));
  }

  rows(words: Uint32Array, from: number, to: number): boolean {
    const need = 2 * (this.#n + to - from);
    if (need > this.#words.length) {
      let size = this.#words.length;
      while (size < need) size *= 2;
      const grown = new Uint32Array(size);
      grown.set(this.#words.subarray(0, 2 * this.#n));
      this.#words = grown;
    }
    this.#words.set(words.subarray(2 * from, 2 * to), 2 * this.#n);
    this.#n += to - from;
    return true;
  }

  /** Keys collected so far. */
  get count(): number {
    return this.#n;
  }

  keys(): BigInt64Array {
    return new BigInt64Array(this.#words.buffer, 0, this.#n);
  }
}

export function runOf(count: number, codes: Uint16Array, keys: BigInt64Array): Run {
  return { count, codes, keys, words: new Uint32Array(keys.buffer, keys.byteOffset, 2 * count), rot: undefined };
}

export function withRotations(run: Run, L: number): Run {
  rotatedOrders(run, L);
  return run;
}

/** The run's rotated orders, built now if they are not yet. */
export function rotatedOrders(run: Run, L: number): Int32Array[] {
  return (run.rot ??= rotations(run.codes, run.count, L));
}

/**
 * A zeroed run of `count` rows (`L` 0: keys only); `shared`: on SharedArrayBuffers, which the fold thread
 * (posting-fold-thread.ts) reads without a copy.
 */
export function newRun(count: number, L: number, shared = false): Run {
  if (!shared) return runOf(count, new Uint16Array(count * L), new BigInt64Array(count));
  return runOf(count, new Uint16Array(new SharedArrayBuffer(2 * count * L)), new BigInt64Array(new SharedArrayBuffer(8 * count)));
}

/** `run` itself when its rows are on SharedArrayBuffers already, else a copy that is (its rotated orders kept). */
export function sharedRun(run: Run, L: number): Run {
  if (run.codes.buffer instanceof SharedArrayBuffer && run.keys.buffer instanceof SharedArrayBuffer) return run;
  const out = newRun(run.count, L, true);
  out.codes.set(run.codes.subarray(0, run.count * L));
  out.keys.set(run.keys.subarray(0, run.count));
  out.rot = run.rot;
  return out;
}

/** First row in [lo, hi) whose codes 0..m-1 are >= q[at..at+m) (> with `after`). */
export function bound(run: Run, L: number, q: Int32Array, at: number, m: number, after: boolean, lo: number, hi: number): number {
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
export function upperFrom(run: Run, L: number, q: Int32Array, at: number, m: number, lo: number, hi: number): number {
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
export function lowerRow(run: Run, L: number, codes: ArrayLike<number>, at: number, khi: number, klo: number, lo: number, hi: number): number {
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
export function findRow(run: Run, L: number, codes: Int32Array, khi: number, klo: number): number {
  const r = lowerRow(run, L, codes, 0, khi, klo, 0, run.count);
  if (r >= run.count || run.words[2 * r] !== klo || run.words[2 * r + 1] !== khi) return -1;
  for (let j = 0; j < L; j++) if (run.codes[r * L + j] !== codes[j]) return -1;
  return r;
}

export function compareRows(x: Run, i: number, y: Run, j: number, L: number): number {
  for (let l = 0; l < L; l++) {
    const d = x.codes[i * L + l]! - y.codes[j * L + l]!;
    if (d !== 0) return d;
  }
  return (x.words[2 * i + 1]! - y.words[2 * j + 1]!) * WORD + (x.words[2 * i]! - y.words[2 * j]!);
}

export function sameCodes(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((c, l) => c === b[l]);
}

/** Copies rows [from, to) of `src` to row `w` of `dst` (codes only when `L` > 0); returns the next row to write. */
export function copyRows(src: Run, from: number, to: number, dst: Run, w: number, L: number): number {
  if (to <= from) return w;
  if (L > 0) dst.codes.set(src.codes.subarray(from * L, to * L), w * L);
  dst.words.set(src.words.subarray(2 * from, 2 * to), 2 * w);
  return w + to - from;
}

/** copyRows for one row. */
export function copyRow(src: Run, i: number, dst: Run, w: number, L: number): number {
  for (let l = 0; l < L; l++) dst.codes[w * L + l] = src.codes[i * L + l]!;
  dst.words[2 * w] = src.words[2 * i]!;
  dst.words[2 * w + 1] = src.words[2 * i + 1]!;
  return w + 1;
}

/** The added rows of a batch, sorted; throws on a row added twice. */
export function sortedAdds(changes: PostingChanges, added: number[], L: number): Run {
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
export function mergeRuns(base: Run, skip: ((row: number) => boolean) | undefined, adds: Run, L: number, count: number, shared = false): Run {
  const out = newRun(count, L, shared);
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
