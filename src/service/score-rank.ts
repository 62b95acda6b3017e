/**
 * Candidate positions best first by vector score, lazily: a retrieve reads k of ~1,000 candidates, so the first
 * `head` positions come from a bounded selection (one pass, a heap of `head` positions) and the rest are sorted only
 * if the caller reads past them (an item deleted between gathering and fetching). Sorting all candidates with a
 * comparator took ~0.3 ms of the ~0.9 ms rerank phase at 1,000 candidates (CPU profile, docs/benchmarks.md).
 *
 * Order: higher signed score first, ties by candidate position (the gathering order), exactly the order of a full
 * stable sort. A score that is not finite (NaN, or an overflow from a vector stored before limits.maxVectorNorm
 * bounded norms) ranks nothing: its candidate is left out, and JSON never sees it.
 */

/**
 * `scores` is signed in place (`sign` 1: inner product, -1: distance, so higher is better). `top`: the first `head`
 * positions of this order (fewer when fewer scores are finite), when the scorer selected them already (sq8's pool thread).
 */
export function rankByScore(scores: Float32Array, sign: 1 | -1, head: number, top?: Int32Array): Iterable<number> {
  for (let i = 0; i < scores.length; i++) scores[i] = sign * scores[i]!;
  const first = Math.max(0, Math.min(head, scores.length));
  return { [Symbol.iterator]: () => ranked(scores, top ?? selectTop(scores, first)) };
}

/** Whether position a ranks before position b. */
function before(scores: Float32Array, a: number, b: number): boolean {
  const sa = scores[a]!;
  const sb = scores[b]!;
  return sa > sb || (sa === sb && a < b);
}

function* ranked(scores: Float32Array, top: Int32Array): Generator<number> {
  yield* top;
  const taken = new Uint8Array(scores.length);
  for (const i of top) taken[i] = 1;
  const rest: number[] = [];
  for (let i = 0; i < scores.length; i++) if (!taken[i] && Number.isFinite(scores[i]!)) rest.push(i);
  if (rest.length === 0) return;
  yield* rest.sort((a, b) => scores[b]! - scores[a]! || a - b);
}

/** The best `head` finite positions, best first: a heap whose root is the worst kept position. */
export function selectTop(scores: Float32Array, head: number): Int32Array {
  const heap = new Int32Array(head);
  let size = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]!)) continue;
    if (size < head) {
      heap[size] = i;
      siftUp(scores, heap, size++);
    } else if (size > 0 && before(scores, i, heap[0]!)) {
      heap[0] = i;
      siftDown(scores, heap, 0, size);
    }
  }
  const out = new Int32Array(size);
  for (let n = size; n > 0; n--) {
    out[n - 1] = heap[0]!;
    heap[0] = heap[n - 1]!;
    siftDown(scores, heap, 0, n - 1);
  }
  return out;
}

/** Heap order: a parent ranks after its children (the root is the worst). */
function siftUp(scores: Float32Array, heap: Int32Array, at: number): void {
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if (!before(scores, heap[parent]!, heap[at]!)) return;
    const t = heap[parent]!;
    heap[parent] = heap[at]!;
    heap[at] = t;
    at = parent;
  }
}

function siftDown(scores: Float32Array, heap: Int32Array, at: number, size: number): void {
  for (;;) {
    const left = 2 * at + 1;
    if (left >= size) return;
    const right = left + 1;
    const worse = right < size && before(scores, heap[left]!, heap[right]!) ? right : left;
    if (!before(scores, heap[at]!, heap[worse]!)) return;
    const t = heap[at]!;
    heap[at] = heap[worse]!;
    heap[worse] = t;
    at = worse;
  }
}
