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
  /** Per query, one search call over all queries (exact only; summed over the chunks). */
  batchedMsPerQuery?: number;
  /** Rows the single-query timings searched: all, or the first chunk of a catalog searched in chunks. */
  singleRows?: number;
  /** Flat indexes the catalog was searched in, one after another (EXACT_CHUNK_ROWS rows each by default). */
  chunks?: number;
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

/** Rows per flat index of the exact baseline: above it the catalog is searched in chunks (FAISS copies its rows). */
export const EXACT_CHUNK_ROWS = 1_000_000;

async function build(factory: string, input: BaselineInput, first = 0, rows = input.n): Promise<{ index: VectorIndex; buildMs: number }> {
  const index = VectorIndex.create({ dim: input.dim, metric: input.metric, factory });
  const ids = BigInt64Array.from({ length: rows }, (_, i) => BigInt(first + i));
  const t0 = performance.now();
  await index.addAsync(input.items.subarray(first * input.dim, (first + rows) * input.dim), ids);
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
export async function exactBaseline(input: BaselineInput, chunkRows = EXACT_CHUNK_ROWS): Promise<{ result: BaselineResult; truth: BigInt64Array }> {
  const { q, k, n } = input;
  const better = input.metric === 'ip' ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  let labels: BigInt64Array = new BigInt64Array(0);
  let scores: Float32Array = new Float32Array(0);
  let buildMs = 0;
  let searchMs = 0;
  let single: SingleQueryTiming | undefined;
  let chunks = 0;
  for (let first = 0; first < n; first += chunkRows, chunks++) {
    const rows = Math.min(chunkRows, n - first);
    const built = await build('Flat', input, first, rows);
    buildMs += built.buildMs;
    try {
      const t0 = performance.now();
      const found = await built.index.search(input.queries.subarray(0, q * input.dim), k);
      searchMs += performance.now() - t0;
      ({ labels, scores } = first === 0 ? { labels: found.labels, scores: found.distances } : mergeTopK(labels, scores, found.labels, found.distances, q, k, better));
      single ??= await timeSingle(built.index, input);
    } finally {
      built.index.close();
    }
  }
  single ??= { queries: 0, qps: 0, latencyMs: latencySummary([]) };
  return {
    result: { factory: 'Flat', buildMs, single, batchedMsPerQuery: searchMs / q, recall: 1, singleRows: Math.min(n, chunkRows), chunks },
    truth: labels,
  };
}

/** Per query, the best k of two top-k lists (a's entries first on ties); -1 labels (fewer than k rows) rank last. */
export function mergeTopK(aLabels: BigInt64Array, aScores: Float32Array, bLabels: BigInt64Array, bScores: Float32Array, q: number, k: number,
  better: (x: number, y: number) => boolean): { labels: BigInt64Array; scores: Float32Array } {
  const labels = new BigInt64Array(q * k);
  const scores = new Float32Array(q * k);
  for (let i = 0; i < q; i++) {
    let a = i * k;
    let b = i * k;
    const aEnd = a + k;
    const bEnd = b + k;
    for (let o = i * k; o < (i + 1) * k; o++) {
      const takeA = b >= bEnd || bLabels[b] === -1n || (a < aEnd && aLabels[a] !== -1n && !better(bScores[b]!, aScores[a]!));
      labels[o] = takeA ? aLabels[a]! : bLabels[b]!;
      scores[o] = takeA ? aScores[a++]! : bScores[b++]!;
    }
  }
  return { labels, scores };
}
