/**
 * The in-process FAISS baseline over the same catalog and queries as the service: exact flat search (the ground
 * truth for recall, and the brute-force speed reference), through the project's addon. Single-query timings run one
 * query per call, as a request would; a batched figure shows the BLAS path. (The ANN peer is an HTTP service:
 * src/bench/peers.ts.)
 */
import { VectorIndex, type Metric } from '../vector/vector-index.ts';
import { latencySummary, type LatencySummary } from './stats.ts';

export interface SingleQueryTiming {
  queries: number;
  qps: number;
  latencyMs: LatencySummary;
}

export interface BaselineResult {
  factory: string;
  buildMs: number;
  single: SingleQueryTiming;
  /** Per query, one search call over all queries (exact only). */
  batchedMsPerQuery?: number;
  /** recall@k against the exact result (1 for exact itself). */
  recall: number;
}

export interface BaselineInput {
  items: Float32Array;
  n: number;
  dim: number;
  metric: Metric;
  queries: Float32Array;
  q: number;
  k: number;
  /** Longest time spent on single-query timing (at least `minQueries` queries are run). */
  budgetMs: number;
  minQueries?: number;
}

async function build(factory: string, input: BaselineInput): Promise<{ index: VectorIndex; buildMs: number }> {
  const index = VectorIndex.create({ dim: input.dim, metric: input.metric, factory });
  const ids = BigInt64Array.from({ length: input.n }, (_, i) => BigInt(i));
  const t0 = performance.now();
  await index.addAsync(input.items.subarray(0, input.n * input.dim), ids);
  return { index, buildMs: performance.now() - t0 };
}

async function timeSingle(index: VectorIndex, input: BaselineInput, labels?: BigInt64Array): Promise<SingleQueryTiming> {
  const { dim, k } = input;
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < input.q; i++) {
    const t = performance.now();
    const r = await index.search(input.queries.subarray(i * dim, (i + 1) * dim), k);
    samples.push(performance.now() - t);
    labels?.set(r.labels, i * k);
    if (performance.now() - t0 > input.budgetMs && samples.length >= (input.minQueries ?? 20)) break;
  }
  return { queries: samples.length, qps: samples.length / ((performance.now() - t0) / 1000), latencyMs: latencySummary(samples) };
}

export function recallAtK(found: BigInt64Array, truth: BigInt64Array, q: number, k: number): number {
  let hits = 0;
  for (let i = 0; i < q; i++) {
    const want = new Set(truth.subarray(i * k, (i + 1) * k));
    for (let j = 0; j < k; j++) if (want.has(found[i * k + j]!)) hits++;
  }
  return hits / (q * k);
}

/** Exact top-k of every query (labels are item row numbers) plus flat-search timings. */
export async function exactBaseline(input: BaselineInput): Promise<{ result: BaselineResult; truth: BigInt64Array }> {
  const { index, buildMs } = await build('Flat', input);
  try {
    const t0 = performance.now();
    const all = await index.search(input.queries.subarray(0, input.q * input.dim), input.k);
    const batchedMsPerQuery = (performance.now() - t0) / input.q;
    const single = await timeSingle(index, input);
    return { result: { factory: 'Flat', buildMs, single, batchedMsPerQuery, recall: 1 }, truth: all.labels };
  } finally {
    index.close();
  }
}
