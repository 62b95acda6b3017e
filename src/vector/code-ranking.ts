/**
 * How the compressed storages (code-store.ts) order candidates scored partly on codes, partly exactly: which code
 * scores to re-score exactly, and how the exact ones stay above the estimates.
 */
/**
 * Keeps the re-scored candidates (positions `exact`, already holding exact scores) at the top of the order: when a
 * code score of another candidate beats the worst exact one, every other code score moves by the same amount to just
 * below it (their order among themselves is kept). Code scores can be biased (PQ's asymmetric squared L2 leaves out
 * each vector's quantisation error, so it runs low), and an exact score must not be outranked by an estimate. `kept`
 * (also holding exact scores: sq8's clamped rows) neither sets that bar nor moves.
 */
export function belowExact(scores: Float32Array, exact: Int32Array, sign: 1 | -1, kept: Int32Array = NO_POSITIONS): void {
  if (exact.length === 0) return;
  if (exactMarks.length < scores.length) exactMarks = new Uint8Array(Math.max(scores.length, 2 * exactMarks.length));
  const isExact = exactMarks;
  for (const p of kept) isExact[p] = 1;
  let worst = Infinity;
  for (const p of exact) {
    isExact[p] = 1;
    worst = Math.min(worst, sign * scores[p]!);
  }
  let best = -Infinity;
  for (let i = 0; i < scores.length; i++) if (!isExact[i] && Number.isFinite(scores[i]!)) best = Math.max(best, sign * scores[i]!);
  if (best !== -Infinity && best >= worst) {
    const gap = best - worst + Math.max(Math.abs(worst) * 2 ** -20, 2 ** -100);
    for (let i = 0; i < scores.length; i++) {
      if (isExact[i] || !Number.isFinite(scores[i]!)) continue;
      const moved = Math.fround(sign * scores[i]! - gap);
      scores[i] = sign * (moved < worst ? moved : worst - Math.abs(worst) * 2 ** -20 - 2 ** -100);
    }
  }
  for (const p of exact) isExact[p] = 0;
  for (const p of kept) isExact[p] = 0;
}

const NO_POSITIONS = new Int32Array(0);

/**
 * The code `scores` of the `clamped` positions (sq8: their codes hold a value clamped to its range's end, so their code
 * scores may be far off) replaced by exact ones, then the best `count` of them all, kept above the estimates
 * (belowExact; a clamped position outside the best keeps its exact score, unmoved): native/src/codes_rerank.cc's order.
 * `exact(positions)`: their exact scores.
 */
export function withExact(scores: Float32Array, clamped: Int32Array, count: number, sign: 1 | -1,
  exact: (positions: Int32Array) => Float32Array): Float32Array {
  const put = (positions: Int32Array) => {
    if (positions.length === 0) return;
    const got = exact(positions);
    for (let i = 0; i < positions.length; i++) scores[positions[i]!] = got[i]!;
  };
  put(clamped);
  const chosen = bestPositions(scores, count, sign);
  if (chosen.length === 0) return scores;
  const done = new Set(clamped);
  put(clamped.length === 0 ? chosen : chosen.filter((p) => !done.has(p)));
  belowExact(scores, chosen, sign, clamped);
  return scores;
}

/**
 * belowExact's marks, kept zeroed between calls (it is synchronous): a fresh array per rerank was one of the
 * per-retrieve allocations that kept V8 collecting its old generation under load (docs/benchmarks.md, "Where it
 * stands (stop 35)").
 */
let exactMarks = new Uint8Array(0);

/**
 * Positions of the `count` best finite scores (sign 1: highest first, -1: lowest), ties at the cut included in
 * position order; all finite positions when there are no more than `count`. The cut is found by selection (no sort).
 */
export function bestPositions(scores: Float32Array, count: number, sign: 1 | -1): Int32Array {
  const keyed = new Float32Array(scores.length);
  let finite = 0;
  for (let i = 0; i < scores.length; i++) if (Number.isFinite(scores[i]!)) keyed[finite++] = sign * scores[i]!;
  const take = Math.min(count, finite);
  const out = new Int32Array(take);
  if (take === 0) return out;
  const cut = finite <= count ? -Infinity : selectNth(keyed.subarray(0, finite), finite - count);
  let n = 0;
  for (let i = 0; i < scores.length && n < take; i++) if (sign * scores[i]! > cut && Number.isFinite(scores[i]!)) out[n++] = i;
  for (let i = 0; i < scores.length && n < take; i++) if (sign * scores[i]! === cut) out[n++] = i;
  return out;
}

/** The value that would sit at position `nth` of `a` sorted ascending (a is reordered; Hoare's selection). */
function selectNth(a: Float32Array, nth: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = median3(a[lo]!, a[(lo + hi) >> 1]!, a[hi]!);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (nth <= j) hi = j;
    else if (nth >= i) lo = i;
    else return a[nth]!;
  }
  return a[nth]!;
}

function median3(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
}

/** A call's copy of its keys, reused across the rerank calls in flight instead of allocated per call. */
export interface Scratch {
  keys: BigInt64Array<ArrayBuffer>;
}

const spareScratch: Scratch[] = [];

/** Scratch for at least `n` keys; hand it back with giveScratch once the call no longer reads it. */
export function takeScratch(n: number): Scratch {
  const found = spareScratch.pop();
  if (found && found.keys.length >= n) return found;
  const size = Math.max(n, 2048);
  return { keys: new BigInt64Array(size) };
}

export function giveScratch(scratch: Scratch): void {
  if (spareScratch.length < 32) spareScratch.push(scratch);
}
