/**
 * Where each code prefix starts in a sorted run (posting-runs.ts), over its first `depth` levels: a scan of a prefix
 * that long or shorter reads its rows' range from two entries, a longer one bisects only within its cell. It spares
 * the posting index's main run most of a binary search per scan (a beam query makes ~100 scans, and the deep steps
 * of each miss the cache). `starts[p]` is the first row whose first `depth` codes, read as a number in base `radix`,
 * are >= p; `radix` is the run's largest code + 1, and `depth` the most levels (at most L) whose radix^depth
 * entries stay within max(MIN_CAP, twice the rows) and MAX_ENTRIES (at 3 levels of 256 codes: 2 levels, 256 KB).
 */
import type { Run } from './posting-runs.ts';

export interface Directory {
  depth: number;
  radix: number;
  /** radix^depth + 1 row numbers. */
  starts: Int32Array;
}

/** Entries at most max(MIN_CAP, 2 x rows), never more than MAX_ENTRIES. */
const MIN_CAP = 1 << 16;
const MAX_ENTRIES = 1 << 22;

/** The directory of a run of `L`-level rows (undefined when not even one level fits, or for no rows). */
export function directoryOf(run: Run, L: number): Directory | undefined {
  const { count, codes } = run;
  if (count === 0 || L === 0) return undefined;
  const cap = Math.min(MAX_ENTRIES, Math.max(MIN_CAP, 2 * count));
  let radix = 0;
  for (let i = 0; i < count * L; i++) radix = Math.max(radix, codes[i]! + 1);
  let depth = 0;
  let cells = 1;
  while (depth < L && cells * radix <= cap) {
    cells *= radix;
    depth++;
  }
  if (depth === 0) return undefined;
  const starts = new Int32Array(cells + 1);
  for (let r = 0; r < count; r++) {
    let p = 0;
    for (let l = 0; l < depth; l++) p = p * radix + codes[r * L + l]!;
    starts[p + 1]!++;
  }
  for (let p = 1; p <= cells; p++) starts[p]! += starts[p - 1]!;
  return { depth, radix, starts };
}

/**
 * The first row of the cell of q[at..at+k) (k <= depth; with `after`, of the cell after it), or -1 when a code
 * there is past the directory's radix (the caller then searches the whole run).
 */
export function cellStart(dir: Directory, q: Int32Array, at: number, k: number, after: boolean): number {
  const radix = dir.radix;
  let p = 0;
  for (let j = 0; j < k; j++) {
    const c = q[at + j]!;
    if (c >= radix) return -1;
    p = p * radix + c;
  }
  if (after) p++;
  for (let j = k; j < dir.depth; j++) p *= radix;
  return dir.starts[p]!;
}
