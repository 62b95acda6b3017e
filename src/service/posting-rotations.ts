/**
 * The rotated orders of a sorted run of SIDs (posting-index.ts), the in-memory counterpart of the catalog's rotated
 * key spaces (sid/rotation.ts): for each position i but the last, the run's rows ordered by (every code but i, code
 * i, key). Rows that agree with a SID everywhere but at i then form one range, in (code i, key) order: Hamming-1
 * neighbours at i in the catalog's order. Position L-1's order is the run's own (natural) order.
 */

/** Most buckets of one counting-sort pass: digits (codes) are combined into one key while their product stays below. */
const MAX_BUCKETS = 1 << 20;

/**
 * Per position i < L-1, the row numbers of `count` rows (codes row-major, L per row, sorted by (SID, key)) in rotation
 * i's order: stable counting sorts of the natural order by the codes but i, last to first (LSD; adjacent codes share a
 * pass while the bucket count allows: one pass at 3 levels of 256 codes), so that rows equal but for code i keep their
 * natural order, which is (code i, key). 4 (L-1) bytes per row.
 */
export function rotations(codes: Uint16Array, count: number, L: number): Int32Array[] {
  const radix = new Int32Array(L);
  for (let r = 0; r < count; r++) for (let j = 0; j < L; j++) if (codes[r * L + j]! >= radix[j]!) radix[j] = codes[r * L + j]! + 1;
  const out: Int32Array[] = [];
  let scratch = new Int32Array(count);
  for (let i = 0; i < L - 1; i++) {
    let perm = new Int32Array(count);
    for (let r = 0; r < count; r++) perm[r] = r;
    // Passes over the codes but i, last to first; each takes codes [from, to) (i excluded) as one mixed-radix key.
    let to = L;
    while (to > 0) {
      let from = to;
      let buckets = 1;
      while (from > 0 && (from - 1 === i || buckets * Math.max(1, radix[from - 1]!) <= MAX_BUCKETS)) {
        from--;
        if (from !== i) buckets *= Math.max(1, radix[from]!);
      }
      if (from === to) from--; // one code alone above MAX_BUCKETS (codes are u16: at most 65,536 buckets)
      if (!(from === i && to === i + 1)) {
        countingPass(codes, L, i, from, to, radix, buckets, perm, scratch);
        [perm, scratch] = [scratch, perm];
      }
      to = from;
    }
    out.push(perm);
  }
  return out;
}

/** Stable counting sort of `perm` into `dst` by the key made of codes [from, to) but i. */
function countingPass(codes: Uint16Array, L: number, i: number, from: number, to: number, radix: Int32Array, buckets: number,
  perm: Int32Array, dst: Int32Array): void {
  const key = (row: number): number => {
    let k = 0;
    for (let j = from; j < to; j++) if (j !== i) k = k * radix[j]! + codes[row * L + j]!;
    return k;
  };
  const starts = new Int32Array(buckets + 1);
  for (let x = 0; x < perm.length; x++) starts[key(perm[x]!) + 1]!++;
  for (let c = 1; c <= buckets; c++) starts[c]! += starts[c - 1]!;
  for (let x = 0; x < perm.length; x++) {
    const row = perm[x]!;
    dst[starts[key(row)]!++] = row;
  }
}

/**
 * First index x in [lo, hi) of rotation i's order (`perm`; null: the rows themselves) whose row's codes but i are
 * >= q's (> with `after`).
 */
export function rotatedBound(codes: Uint16Array, L: number, perm: Int32Array | null, q: Int32Array, i: number, after: boolean,
  lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const base = (perm ? perm[mid]! : mid) * L;
    let d = 0;
    for (let j = 0; j < L && d === 0; j++) if (j !== i) d = codes[base + j]! - q[j]!;
    if (d < 0 || (after && d === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
