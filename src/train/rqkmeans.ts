/**
 * RQ-KMeans: residual k-means, trained level by level.
 *
 *   x  = input row (L2-normalised when normalize = 'l2', exactly as encoder.onnx does: x / max(||x||, 1e-12))
 *   r0 = x;  for level l: fit C_l on a sample of r_l;  code_l = argmin_k ||r_l - C_l[k]||^2;  r_{l+1} = r_l - C_l[code_l]
 *
 * - Fitting: FAISS k-means (the native addon) on `sample` rows drawn once, seeded, and reused at every level (the
 *   residuals of the same rows). FAISS initialises from k randomly sampled points (seeded) and re-seeds empty
 *   clusters during training by splitting a large cluster in two (faiss::Clustering's split_clusters); the
 *   trainer reports the clusters that are still empty in the final assignment (`emptyClusters`, normally 0).
 * - Assignment of all rows: FAISS exact nearest centroid (`assignNearest`), i.e. the argmin the encoder computes.
 *   These are the trainer's codes; the exported encoder reproduces them.
 * - `balanced`: after the k-means fit, `balancedRounds` Lloyd rounds whose assignment step is Sinkhorn-balanced
 *   (src/numeric/sinkhorn.ts, FORGE) and whose update step is the mean of each balanced cluster (an empty cluster
 *   keeps its centroid). Balance thus shapes the codebook; the codes, the residuals passed to the next level and
 *   inference all stay argmin, so training and serving agree.
 * - Deterministic for the same data, options and thread count (FAISS: seed + thread count; ORT Sinkhorn: fixed
 *   reduction order).
 *
 * Progress is reported through `onProgress`. FAISS runs a level's k-means in one native call, so its per-iteration
 * objectives arrive together when the level's fit ends; balanced rounds are reported as they run.
 */
import { SidxError } from '../errors.ts';
import { SinkhornAssigner, type SinkhornOptions } from '../numeric/sinkhorn.ts';
import { assignNearest, getVectorThreads, kmeans } from '../vector/vector-index.ts';

export type Normalize = 'l2' | 'none';

export interface RqKmeansOptions {
  /** Codebook size per level; its length is the number of levels. */
  codebookSizes: number[];
  /** Rows used to fit the codebooks (default: all rows). */
  sample?: number;
  /** FAISS k-means iterations per level (default 25). */
  iterations?: number;
  /** Seeds the sample and FAISS (level l uses seed + l); default 0. */
  seed?: number;
  normalize?: Normalize;
  /** Sinkhorn-balanced codebook training (see module doc). */
  balanced?: boolean;
  /** Balanced Lloyd rounds per level after the k-means fit (default 10). */
  balancedRounds?: number;
  sinkhorn?: Pick<SinkhornOptions, 'epsilon' | 'iterations' | 'maxMatrixFloats'>;
  onProgress?: (event: RqKmeansProgress) => void;
}

export type RqKmeansProgress =
  | { kind: 'level-start'; level: number; levels: number; codebookSize: number; sampleRows: number }
  | { kind: 'kmeans'; level: number; iteration: number; iterations: number; objective: number }
  | { kind: 'balanced'; level: number; round: number; rounds: number; objective: number; largestCluster: number }
  | { kind: 'level-done'; level: number; levels: number; objective: number; emptyClusters: number; seconds: number };

export interface RqKmeansLevelStats {
  codebookSize: number;
  /** FAISS k-means objective (sum of squared distances on the sample) per iteration. */
  kmeansObjective: number[];
  /** Objective of each balanced round (sum of squared distances to the balanced assignment), if balanced. */
  balancedObjective: number[];
  /** Sum over all rows of the squared distance to the assigned codeword (argmin). */
  assignedObjective: number;
  /** Codewords no row was assigned to in the final (argmin) assignment. */
  emptyClusters: number;
  seconds: number;
}

export interface RqKmeansModel {
  dim: number;
  normalize: Normalize;
  codebookSizes: number[];
  /** Per level, K_l x dim row-major codewords. */
  codebooks: Float32Array[];
}

export interface RqKmeansResult extends RqKmeansModel {
  n: number;
  /** n x levels codes (argmin at every level), row-major. */
  codes: Int32Array;
  /** The rows the codebooks were fitted to: n x dim, a normalised copy when normalize = 'l2', else `data` itself. */
  inputs: Float32Array;
  /** inputs minus the final residual: the sum of each row's codewords, n x dim. */
  reconstructions: Float32Array;
  levels: RqKmeansLevelStats[];
  sampleRows: number;
  /** FAISS threads in use (k-means results depend on it). */
  threads: number;
}

export const DEFAULT_KMEANS_ITERATIONS = 25;
export const DEFAULT_BALANCED_ROUNDS = 10;

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

function checkOptions(n: number, dim: number, opts: RqKmeansOptions): void {
  if (!Number.isInteger(dim) || dim < 1) throw invalid(`dim must be a positive integer, got ${dim}`, 'dim');
  if (!Number.isInteger(n) || n < 1) throw invalid(`need at least one row, got ${n}`, 'data');
  const sizes = opts.codebookSizes;
  if (!Array.isArray(sizes) || sizes.length < 1 || sizes.length > 64) {
    throw invalid('codebookSizes must list 1..64 levels', 'codebookSizes');
  }
  const sample = opts.sample ?? n;
  if (!Number.isInteger(sample) || sample < 1) throw invalid(`sample must be a positive integer, got ${sample}`, 'sample');
  const fitted = Math.min(sample, n);
  sizes.forEach((k, l) => {
    if (!Number.isInteger(k) || k < 1 || k > 65536) {
      throw invalid(`codebook size of level ${l + 1} must be an integer in 1..65536, got ${k}`, `codebookSizes[${l}]`);
    }
    if (k > fitted) {
      throw invalid(`codebook size ${k} of level ${l + 1} exceeds the ${fitted} rows used for fitting`, `codebookSizes[${l}]`);
    }
  });
  const positive = (v: number | undefined, field: string) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw invalid(`${field} must be a positive integer, got ${v}`, field);
  };
  positive(opts.iterations, 'iterations');
  positive(opts.balancedRounds, 'balancedRounds');
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed + sizes.length > 2 ** 31 - 1) {
    throw invalid(`seed must be an integer in 0..${2 ** 31 - 1 - sizes.length}, got ${seed}`, 'seed');
  }
  if (opts.normalize !== undefined && opts.normalize !== 'l2' && opts.normalize !== 'none') {
    throw invalid(`normalize must be "l2" or "none", got ${String(opts.normalize)}`, 'normalize');
  }
}

/** x / max(||x||, 1e-12) per row, in float32 as the encoder graph computes it. */
export function l2NormalizeRows(data: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let o = 0; o < data.length; o += dim) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss = Math.fround(ss + Math.fround(data[o + j]! * data[o + j]!));
    const norm = Math.max(Math.fround(Math.sqrt(ss)), 1e-12);
    for (let j = 0; j < dim; j++) out[o + j] = data[o + j]! / norm;
  }
  return out;
}

/** `count` distinct row indices out of n, ascending, from a seeded partial Fisher-Yates shuffle. */
export function sampleRowIndices(n: number, count: number, seed: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (count >= n) return order;
  let state = (seed ^ 0x5bd1e995) >>> 0; // mulberry32
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (n - i));
    const swap = order[i]!;
    order[i] = order[j]!;
    order[j] = swap;
  }
  return order.subarray(0, count).sort();
}

function gatherRows(data: Float32Array, dim: number, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) out.set(data.subarray(rows[i]! * dim, (rows[i]! + 1) * dim), i * dim);
  return out;
}

/** Centroid of each cluster (mean of its rows); a cluster without rows keeps its previous centroid. */
function updateCentroids(points: Float32Array, dim: number, labels: Int32Array, centroids: Float32Array): void {
  const k = centroids.length / dim;
  const sums = new Float64Array(centroids.length);
  const counts = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    counts[c]!++;
    const src = i * dim;
    const dst = c * dim;
    for (let j = 0; j < dim; j++) sums[dst + j]! += points[src + j]!;
  }
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) continue;
    const inverse = 1 / counts[c]!;
    for (let j = 0, o = c * dim; j < dim; j++) centroids[o + j] = sums[o + j]! * inverse;
  }
}

function countEmpty(labels: Int32Array, k: number): { empty: number; largest: number } {
  const counts = new Int32Array(k);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  let empty = 0;
  let largest = 0;
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) empty++;
    if (counts[c]! > largest) largest = counts[c]!;
  }
  return { empty, largest };
}

function sumOf(values: Float32Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s;
}

/** Trains RQ-KMeans on n = data.length / dim rows. `data` is not modified. */
export async function trainRqKmeans(data: Float32Array, dim: number, opts: RqKmeansOptions): Promise<RqKmeansResult> {
  const n = data.length / dim;
  checkOptions(n, dim, opts);
  const sizes = [...opts.codebookSizes];
  const levelCount = sizes.length;
  const normalize = opts.normalize ?? 'none';
  const seed = opts.seed ?? 0;
  const iterations = opts.iterations ?? DEFAULT_KMEANS_ITERATIONS;
  const rounds = opts.balancedRounds ?? DEFAULT_BALANCED_ROUNDS;
  const report = opts.onProgress ?? (() => {});
  const threads = getVectorThreads();

  const inputs = normalize === 'l2' ? l2NormalizeRows(data, dim) : data; // never written to
  const residual = inputs.slice();
  const sampleRows = sampleRowIndices(n, Math.min(opts.sample ?? n, n), seed);
  const codes = new Int32Array(n * levelCount);
  const codebooks: Float32Array[] = [];
  const levels: RqKmeansLevelStats[] = [];
  const sinkhorn = opts.balanced ? await SinkhornAssigner.create(dim, { ...opts.sinkhorn, threads }) : null;

  try {
    for (let l = 0; l < levelCount; l++) {
      const started = performance.now();
      const k = sizes[l]!;
      report({ kind: 'level-start', level: l, levels: levelCount, codebookSize: k, sampleRows: sampleRows.length });
      const sample = sampleRows.length === n ? residual : gatherRows(residual, dim, sampleRows);
      const fit = await kmeans(sample, dim, k, {
        niter: iterations,
        seed: seed + l,
        // Fit on every sampled row (FAISS would otherwise subsample to 256 per centroid) and skip its warning
        // about few points per centroid: the sample size is the caller's choice.
        maxPointsPerCentroid: Math.ceil(sampleRows.length / k),
        minPointsPerCentroid: 1,
      });
      const centroids = fit.centroids;
      fit.objective.forEach((objective, i) => report({ kind: 'kmeans', level: l, iteration: i + 1, iterations, objective }));

      const balancedObjective: number[] = [];
      if (sinkhorn !== null) {
        for (let round = 1; round <= rounds; round++) {
          const balanced = await sinkhorn.assign(sample, centroids);
          const objective = sumOf(balanced.distances);
          balancedObjective.push(objective);
          report({
            kind: 'balanced', level: l, round, rounds, objective, largestCluster: countEmpty(balanced.labels, k).largest,
          });
          updateCentroids(sample, dim, balanced.labels, centroids);
        }
      }

      const { labels, distances } = await assignNearest(residual, dim, centroids);
      for (let i = 0; i < n; i++) {
        const code = labels[i]!;
        codes[i * levelCount + l] = code;
        const r = i * dim;
        const c = code * dim;
        for (let j = 0; j < dim; j++) residual[r + j] = residual[r + j]! - centroids[c + j]!;
      }
      const emptyClusters = countEmpty(labels, k).empty;
      const stats: RqKmeansLevelStats = {
        codebookSize: k,
        kmeansObjective: Array.from(fit.objective),
        balancedObjective,
        assignedObjective: sumOf(distances),
        emptyClusters,
        seconds: (performance.now() - started) / 1000,
      };
      codebooks.push(centroids);
      levels.push(stats);
      report({
        kind: 'level-done', level: l, levels: levelCount, objective: stats.assignedObjective, emptyClusters, seconds: stats.seconds,
      });
    }
  } finally {
    await sinkhorn?.close();
  }

  const reconstructions = new Float32Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) reconstructions[i] = inputs[i]! - residual[i]!;
  return {
    dim, normalize, codebookSizes: sizes, codebooks, n, codes, inputs, reconstructions, levels,
    sampleRows: sampleRows.length, threads,
  };
}

/** The sum of each row's codewords (n x dim) for n x levels codes. */
export function reconstructFromCodes(model: RqKmeansModel, codes: Int32Array, n: number): Float32Array {
  const { dim, codebooks } = model;
  const levels = codebooks.length;
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    for (let l = 0; l < levels; l++) {
      const c = codes[i * levels + l]! * dim;
      const book = codebooks[l]!;
      for (let j = 0; j < dim; j++) out[o + j] = out[o + j]! + book[c + j]!;
    }
  }
  return out;
}
