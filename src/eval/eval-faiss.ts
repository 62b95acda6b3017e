/**
 * The FAISS rows of `sidx eval`, on the project's addon:
 * - exact: a Flat index over every item (inner product or squared L2 as the model's metric): the ceiling;
 * - ivf-flat: "IVF<nlist>,Flat" trained on the items (FAISS k-means), searched with `nprobe` lists; the vectors it
 *   scores are counted from the probed lists' sizes (ivfSweep).
 */
import { VectorIndex, type Metric } from '../vector/vector-index.ts';
import { RankAccumulator, type EvalRow } from './eval-metrics.ts';
import { ivfLayout } from './ivf-layout.ts';

export interface FaissEvalInput {
  /** n × dim item vectors as indexed (id = row index). */
  items: Float32Array;
  n: number;
  dim: number;
  metric: Metric;
  queries: Float32Array;
  targets: Int32Array;
  ks: readonly number[];
}

export interface IvfPoint {
  nprobe: number;
  row: EvalRow;
}

const RESULT_BYTES = 64 << 20;

function ids(n: number): BigInt64Array {
  return BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
}

/** Searches every query (in batches) with `k` results; calls `each(query, labels of that query)`. */
async function searchAll(index: VectorIndex, input: FaissEvalInput, k: number,
  each: (q: number, labels: BigInt64Array) => void): Promise<void> {
  const { dim, queries } = input;
  const total = queries.length / dim;
  const batch = Math.max(1, Math.floor(RESULT_BYTES / (12 * k)));
  for (let start = 0; start < total; start += batch) {
    const end = Math.min(total, start + batch);
    const { labels } = await index.search(queries.subarray(start * dim, end * dim), k);
    for (let q = start; q < end; q++) each(q, labels.subarray((q - start) * k, (q - start + 1) * k));
  }
}

function rankedOf(labels: BigInt64Array, k: number): { ranked: Int32Array; found: number } {
  // FAISS fills the found results first, then -1: binary search for the boundary.
  let found = 0;
  let hi = labels.length;
  while (found < hi) {
    const mid = (found + hi) >>> 1;
    if (labels[mid]! >= 0n) found = mid + 1;
    else hi = mid;
  }
  const ranked = new Int32Array(Math.min(k, found));
  for (let i = 0; i < ranked.length; i++) ranked[i] = Number(labels[i]!);
  return { ranked, found };
}

/** Exact search over all items: the `exact` row. */
export async function exactRow(input: FaissEvalInput): Promise<EvalRow> {
  const index = VectorIndex.create({ dim: input.dim, metric: input.metric, factory: 'Flat' });
  try {
    index.add(input.items, ids(input.n));
    const acc = new RankAccumulator(input.ks);
    const k = Math.min(input.n, Math.max(...input.ks));
    await searchAll(index, input, k, (q, labels) => acc.add(rankedOf(labels, k).ranked, input.targets[q]!, input.n));
    return acc.row('exact', input.n);
  } finally {
    index.close();
  }
}

/**
 * Reranks ordered candidate lists the way SidxService.retrieve does (FAISS scoreSubset; descending inner product,
 * or ascending squared L2; ties keep candidate order), for budget sweeps derived from one candidate list.
 */
export class SubsetRanker {
  #index: VectorIndex;
  #sign: number;

  constructor(input: Pick<FaissEvalInput, 'items' | 'n' | 'dim' | 'metric'>) {
    this.#index = VectorIndex.create({ dim: input.dim, metric: input.metric, factory: 'Flat' });
    this.#index.add(input.items, ids(input.n));
    this.#sign = input.metric === 'ip' ? 1 : -1;
  }

  /** The best `k` of `candidates` (item indices, in candidate order) for `query`. */
  top(query: Float32Array, candidates: ArrayLike<number>, k: number): number[] {
    return this.topOfPrefixes(query, candidates, [candidates.length], k)[0]!;
  }

  /**
   * For each budget b, the best `k` of the first b candidates: what `top` returns for that prefix (each candidate's
   * score does not depend on the others scored with it), with one FAISS call for the whole list.
   */
  topOfPrefixes(query: Float32Array, candidates: ArrayLike<number>, budgets: readonly number[], k: number): number[][] {
    if (candidates.length === 0) return budgets.map(() => []);
    const scores = this.#index.scoreSubset(query, BigInt64Array.from(candidates as ArrayLike<number>, (c) => BigInt(c)));
    return budgets.map((b) => {
      const order = Array.from({ length: Math.min(b, candidates.length) }, (_, i) => i)
        .sort((x, y) => this.#sign * (scores[y]! - scores[x]!) || x - y);
      return order.slice(0, k).map((i) => candidates[i]!);
    });
  }

  close(): void {
    this.#index.close();
  }
}

/** Number of IVF lists for n items: about sqrt(n), with at least 39 training points per list (FAISS's minimum). */
export function defaultNlist(n: number): number {
  return Math.max(1, Math.min(Math.round(Math.sqrt(n)), Math.floor(n / 39)));
}

/** nprobe values to sweep: 1, 2, 3, 4, 6, 8, 12, 16, ... up to nlist. */
export function nprobeSweep(nlist: number): number[] {
  const out: number[] = [];
  for (let p = 1; p <= nlist; p = p < 4 ? p + 1 : Math.round(p * 1.5)) out.push(p);
  if (out[out.length - 1] !== nlist) out.push(nlist);
  return out;
}

/**
 * IVF-Flat rows at each nprobe (method name "ivf-flat", meanCandidates = vectors scored). The vectors a query
 * scores are those of the lists it probes: its `nprobe` nearest centroids, found by FAISS's quantizer search
 * (here a Flat index over the IVF's own centroids, the same search the IVF runs), with the list sizes read from the
 * index (ivf-layout.ts). The ranking is the IVF search with k = the largest K. (Asking FAISS for k = n results per
 * query, which also returns every scored vector, spent most of an instruments run sorting n-slot heaps.)
 */
export async function ivfSweep(input: FaissEvalInput, nlist: number, nprobes: readonly number[]): Promise<IvfPoint[]> {
  const { dim, n, metric, queries } = input;
  const index = VectorIndex.create({ dim, metric, factory: `IVF${nlist},Flat` });
  const quantizer = VectorIndex.create({ dim, metric, factory: 'Flat' });
  try {
    await index.train(input.items);
    index.add(input.items, ids(n));
    const { centroids, sizes } = await ivfLayout(index);
    quantizer.add(centroids, ids(nlist));
    const nq = queries.length / dim;
    const np = nprobes.length;
    const scored = new Float64Array(nq * np);
    await searchAll(quantizer, input, nlist, (q, lists) => {
      let sum = 0;
      for (let p = 1, j = 0; p <= nlist && j < np; p++) {
        sum += sizes[Number(lists[p - 1]!)]!;
        if (p === nprobes[j]) scored[q * np + j++] = sum;
      }
    });
    const kMax = Math.min(n, Math.max(...input.ks));
    const out: IvfPoint[] = [];
    for (const [j, nprobe] of nprobes.entries()) {
      index.setSearchParameter('nprobe', nprobe);
      const acc = new RankAccumulator(input.ks);
      await searchAll(index, input, kMax, (q, labels) => acc.add(rankedOf(labels, kMax).ranked, input.targets[q]!, scored[q * np + j]!));
      out.push({ nprobe, row: acc.row('ivf-flat', n) });
    }
    return out;
  } finally {
    index.close();
    quantizer.close();
  }
}

/** The point whose mean scored count is closest to `target` (ties: the smaller nprobe). */
export function closestByWork(points: readonly IvfPoint[], target: number): IvfPoint {
  let best = points[0]!;
  for (const p of points) {
    if (Math.abs(p.row.meanCandidates - target) < Math.abs(best.row.meanCandidates - target)) best = p;
  }
  return best;
}
