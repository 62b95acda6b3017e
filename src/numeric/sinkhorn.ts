/**
 * Sinkhorn-balanced assignment of points to centroids (FORGE's training assignment), as one ONNX graph run on
 * ONNX Runtime: the distance matrix is a Gemm, every step after it a reduction over the [N, K] matrix.
 *
 * For a batch of points X [N, D] and centroids C [K, D]:
 *   D  = ||x||^2 - 2 X C^T + ||c||^2               squared L2 distances, [N, K] (float32, one Gemm)
 *   Z  = (D - mean(D)) / std(D), shifted to min 0   z-score over the whole matrix (float64 from here on)
 *   Q0 = exp(-eps Z)                                the Gibbs kernel
 *   Q  = diag(u) Q0 diag(v), alternating `iterations` times
 *        column step  v_j = 1 / sum_i u_i Q0_ij     every centroid receives the same total mass
 *        row step     u_i = 1 / sum_j Q0_ij v_j     every point spreads a mass of one
 *   label = argmax_j Q_ij                           ties: the lowest index
 * This is the usual row/column normalisation of Q written with scaling vectors, so each step is a
 * matrix-vector product instead of a pass that rewrites the matrix. The shift to min 0 is taken per row: a
 * per-row constant is absorbed by u, so the result equals the global shift, and every row keeps exp(0) = 1 as its
 * best entry; eps * Z is capped at 300 so no entry underflows float64 (entries that far below a row's best
 * never win its argmax).
 * Outputs: `labels` int64 [N] and `assigned_distances` float32 [N] (D at the chosen label, for the objective).
 *
 * eps is the inverse temperature: small eps spreads points almost uniformly over the centroids, large eps
 * approaches the plain nearest-centroid assignment; more iterations bring the column sums closer to equal.
 * The graph takes eps as an input; `iterations` is unrolled, so a session serves one iteration count.
 *
 * Balance holds within one run of the graph, so `SinkhornAssigner.assign` splits large inputs into as few row
 * batches as the memory bound allows (each batch is balanced on its own). Never run it on 0 rows (see
 * residual-encoder.ts: ORT reductions over an empty axis are not meaningful), `assign` returns early instead.
 */
import ort from 'onnxruntime-node';
import { GraphBuilder, attr } from './onnx-builder.ts';

export interface SinkhornOptions {
  /** Inverse temperature applied to the z-scored distances (default 20). */
  epsilon?: number;
  /** Alternating column/row normalisations (default 30). */
  iterations?: number;
  /** ORT intra-op threads (default: ORT's choice). */
  threads?: number;
  /** Upper bound on N x K floats per run; larger inputs are split into row batches (default 2^24). */
  maxMatrixFloats?: number;
}

export interface SinkhornAssignment {
  labels: Int32Array;
  /** Squared L2 distance of each point to its assigned centroid. */
  distances: Float32Array;
}

export const DEFAULT_SINKHORN_EPSILON = 20;
export const DEFAULT_SINKHORN_ITERATIONS = 30;
const DEFAULT_MAX_MATRIX_FLOATS = 1 << 24;
const DOUBLE = 11; // ONNX TensorProto.DOUBLE
/** Largest eps * z kept: exp(-300) ~ 5e-131 leaves float64 room for the scaling vectors. */
const MAX_EXPONENT = 300;

/** The Sinkhorn assignment graph for `dim`-dimensional points (opset 17). */
export function buildSinkhornGraph(dim: number, iterations: number): Uint8Array {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(iterations) || iterations < 0) {
    throw new RangeError(`iterations must be a non-negative integer, got ${iterations}`);
  }
  const g = new GraphBuilder('sinkhorn_assignment');
  const x = g.input('points', 'float32', ['N', dim]);
  const c = g.input('centroids', 'float32', ['K', dim]);
  const eps = g.input('epsilon', 'float32', [1]);

  const pointNorms = g.op('ReduceSumSquare', [x], { axes: [1], keepdims: 1 }); // [N, 1]
  const centroidNorms = g.op('ReduceSumSquare', [c], { axes: [1], keepdims: 0 }); // [K]
  const cross = g.op('Gemm', [x, c, centroidNorms], { transB: 1, alpha: attr.float(-2), beta: attr.float(1) });
  const distances = g.op('Max', [g.op('Add', [cross, pointNorms]), g.float32([0], [])]);

  const mean = g.op('ReduceMean', [distances], { keepdims: 1 });
  const centred = g.op('Sub', [distances, mean]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], { keepdims: 1 });
  const std = g.op('Max', [g.op('Sqrt', [variance]), g.float32([1e-12], [])]);
  const z = g.op('Cast', [g.op('Div', [centred, std])], { to: DOUBLE });
  // Per-row shift to min 0 and the cap on eps * z: see the module doc.
  const shifted = g.op('Sub', [z, g.op('ReduceMin', [z], { axes: [1], keepdims: 1 })]);
  const exponent = g.op('Min', [g.op('Mul', [shifted, g.op('Cast', [eps], { to: DOUBLE })]), g.constant(Float64Array.of(MAX_EXPONENT), [])]);
  const kernel = g.op('Exp', [g.op('Neg', [exponent])]); // Q0 = exp(-eps z), [N, K] float64
  const asRow = g.int64([1, -1]);
  const asColumn = g.int64([-1, 1]);
  let vRow = '';
  for (let t = 0; t < iterations; t++) {
    let columnSums: string; // [1, K]: sum_i u_i Q0_ij
    if (t === 0) {
      columnSums = g.op('ReduceSum', [kernel, g.int64([0])], { keepdims: 1 }); // u = 1 before any row step
    } else {
      const rowSums = g.op('MatMul', [kernel, g.op('Reshape', [vRow, asColumn])]); // [N, 1]: sum_j Q0_ij v_j
      const uRow = g.op('Reshape', [g.op('Reciprocal', [rowSums]), asRow]); // row step
      columnSums = g.op('MatMul', [uRow, kernel]);
    }
    vRow = g.op('Reciprocal', [columnSums]); // column step
  }
  const scores = iterations === 0 ? kernel : g.op('Mul', [kernel, vRow]); // row scaling by u leaves argmax unchanged
  const labels = g.op('ArgMax', [scores], { axis: 1, keepdims: 1, select_last_index: 0 }); // [N, 1]
  const assigned = g.op('GatherElements', [distances, labels], { axis: 1 });
  const axis1 = g.int64([1]);
  g.output(g.op('Squeeze', [labels, axis1]), 'int64', ['N'], 'labels');
  g.output(g.op('Squeeze', [assigned, axis1]), 'float32', ['N'], 'assigned_distances');
  return g.serialize({ opset: 17, docString: `Sinkhorn-balanced assignment, ${iterations} iterations, dim ${dim}` });
}

/** One ORT session of the Sinkhorn graph; `close()` releases it. */
export class SinkhornAssigner {
  readonly dim: number;
  readonly epsilon: number;
  readonly iterations: number;
  readonly maxMatrixFloats: number;
  #session: ort.InferenceSession | null;

  private constructor(session: ort.InferenceSession, dim: number, epsilon: number, iterations: number, maxFloats: number) {
    this.#session = session;
    this.dim = dim;
    this.epsilon = epsilon;
    this.iterations = iterations;
    this.maxMatrixFloats = maxFloats;
  }

  static async create(dim: number, options: SinkhornOptions = {}): Promise<SinkhornAssigner> {
    const epsilon = options.epsilon ?? DEFAULT_SINKHORN_EPSILON;
    const iterations = options.iterations ?? DEFAULT_SINKHORN_ITERATIONS;
    if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new RangeError(`epsilon must be a positive number, got ${epsilon}`);
    const maxFloats = options.maxMatrixFloats ?? DEFAULT_MAX_MATRIX_FLOATS;
    const session = await ort.InferenceSession.create(buildSinkhornGraph(dim, iterations), {
      executionProviders: ['cpu'],
      intraOpNumThreads: options.threads ?? 0,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    return new SinkhornAssigner(session, dim, epsilon, iterations, maxFloats);
  }

  /** Rows per graph run for `k` centroids: the whole input when it fits the bound, else equal-sized batches. */
  batchRows(n: number, k: number): number {
    const limit = Math.max(1, Math.floor(this.maxMatrixFloats / k));
    const batches = Math.ceil(n / limit);
    return Math.ceil(n / batches);
  }

  /** Balanced labels for the n = points.length / dim rows of `points` against k = centroids.length / dim. */
  async assign(points: Float32Array, centroids: Float32Array): Promise<SinkhornAssignment> {
    const session = this.#session;
    if (session === null) throw new Error('SinkhornAssigner is closed');
    const d = this.dim;
    if (points.length % d !== 0 || centroids.length % d !== 0 || centroids.length === 0) {
      throw new RangeError(`points (${points.length}) and centroids (${centroids.length}) must be non-empty multiples of dim ${d}`);
    }
    const n = points.length / d;
    const k = centroids.length / d;
    const labels = new Int32Array(n);
    const distances = new Float32Array(n);
    if (n === 0) return { labels, distances };
    const centroidTensor = new ort.Tensor('float32', centroids, [k, d]);
    const epsTensor = new ort.Tensor('float32', Float32Array.of(this.epsilon), [1]);
    const rows = this.batchRows(n, k);
    for (let start = 0; start < n; start += rows) {
      const end = Math.min(n, start + rows);
      const batch = new ort.Tensor('float32', points.subarray(start * d, end * d), [end - start, d]);
      const out = await session.run({ points: batch, centroids: centroidTensor, epsilon: epsTensor });
      const batchLabels = out.labels!.data as BigInt64Array;
      // int64 labels are small and non-negative: the low little-endian word is the value.
      const words = new Int32Array(batchLabels.buffer, batchLabels.byteOffset, batchLabels.length * 2);
      for (let i = 0; i < end - start; i++) labels[start + i] = words[2 * i]!;
      distances.set(out.assigned_distances!.data as Float32Array, start);
    }
    return { labels, distances };
  }

  async close(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    await session?.release();
  }
}
