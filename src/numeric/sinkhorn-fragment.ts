/**
 * FORGE's Sinkhorn-balanced assignment as a graph fragment, for use inside a larger graph (the RQ-VAE training
 * step assigns each level's residuals with it). The standalone assigner is ./sinkhorn.ts; this fragment computes
 * FORGE's algorithm (al_sid `sinkhorn` + `find_nearest_embedding`) exactly, with the work arranged to stay cheap:
 *
 * FORGE, for points r_i [N, H] and codewords c_j [K, H]:
 *   d_ij = ||r_i - c_j||^2;  z = (d - mean(d)) / (std(d) + 1e-6);  z -= min(z);  Q = exp(-eps z)
 *   repeat `iterations` times: scale each column of Q to sum 1/K, then each row to sum 1/N
 *   label_i = argmax_j Q_ij
 * Written with d_ij = a_i + b_j - 2 p_ij (a = ||r||^2, b = ||c||^2, p = r . c) and kappa = 2 eps / (std + 1e-6):
 *   Q_ij = const * alpha_i * beta_j * E_ij,   E_ij = exp(kappa p_ij - m_i),  m_i = max_j kappa p_ij,
 *   alpha_i = exp(m_i - kappa a_i / 2),      beta_j = exp(-kappa b_j / 2)
 * Every column or row normalisation multiplies Q by a diagonal matrix, so Q = diag(u) E diag(v) throughout:
 *   u = alpha (normalised to max 1);  per iteration  v = 1 / (u^T E)  [column step], u = 1 / (E v)  [row step]
 * beta is absorbed exactly by the first column step, global constants cancel, and label_i = argmax_j E_ij v_j
 * (the last row step scales a whole row, so it is skipped). Each iteration is two matrix-vector products over E
 * instead of rewriting Q twice.
 * - mean(d) and std(d) over the N x K matrix come from H x H and [N|K] x H products in float64 (the second moment
 *   needs sum_ij p_ij^2 = <R^T R, C^T C>), not from passes over the N x K matrix. FORGE uses torch.std (n - 1
 *   denominator); this uses n: the difference is below 1e-7 relative for any real batch.
 * - E has row maximum 1, so no row underflows; u and v go through max(., 1e-30) before the reciprocal, as FORGE's
 *   sums go through + 1e-8, so a column that every row ignores gets a large but finite v and an all-zero row
 *   stays out of the argmax instead of producing NaN.
 * - Ties in the argmax go to the lowest index (ArgMax select_last_index = 0), as in torch.argmax on CPU.
 * Never run a graph containing it on N = 0 rows.
 */
import { GraphBuilder, attr } from './onnx-builder.ts';
import { onnxTypeCode, rowCount, scalar, type FloatType } from './dense-graph.ts';

export interface SinkhornFragmentOptions {
  dtype: FloatType;
  /** Column/row normalisation rounds (FORGE: 5); at least 1. */
  iterations: number;
  /** Name of a rank-0 `dtype` value holding eps (FORGE: 10). */
  epsilon: string;
  /** K: rows of the codebook (static). */
  codebookSize: number;
}

/** Appends the assignment of `points` [N, H] to `codebook` [K, H]; returns labels as int64 [N, 1]. */
export function appendSinkhornLabels(g: GraphBuilder, points: string, codebook: string,
  options: SinkhornFragmentOptions): string {
  const { dtype, iterations, codebookSize: k } = options;
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`iterations must be >= 1, got ${iterations}`);
  const f64 = (v: string) => (dtype === 'float64' ? v : g.op('Cast', [v], { to: 11 }));
  const d = (v: number) => scalar(g, 'float64', v);
  const axis0 = g.int64([0]);
  const sum = (v: string) => g.op('ReduceSum', [v], { keepdims: 0 });

  // Moments of d over the N x K matrix, in float64, without forming it.
  const r = f64(points);
  const c = f64(codebook);
  const n = rowCount(g, points, 'float64');
  const kk = d(k);
  const a = g.op('ReduceSumSquare', [r], { axes: [1], keepdims: 1 }); // [N, 1]
  const b = g.op('ReduceSumSquare', [c], { axes: [1], keepdims: 1 }); // [K, 1]
  const sumR = g.op('ReduceSum', [r, axis0], { keepdims: 1 }); // [1, H]
  const sumC = g.op('ReduceSum', [c, axis0], { keepdims: 1 }); // [1, H]
  const sumA = sum(a);
  const sumB = sum(b);
  const s1 = g.op('Sub', [
    g.op('Add', [g.op('Mul', [kk, sumA]), g.op('Mul', [n, sumB])]),
    g.op('Mul', [d(2), sum(g.op('Mul', [sumR, sumC]))]),
  ]);
  const aR = g.op('Gemm', [a, r], { transA: 1 }); // [1, H] = a^T R
  const bC = g.op('Gemm', [b, c], { transA: 1 }); // [1, H] = b^T C
  const pp = sum(g.op('Mul', [g.op('Gemm', [r, r], { transA: 1 }), g.op('Gemm', [c, c], { transA: 1 })]));
  const cross = g.op('Add', [sum(g.op('Mul', [aR, sumC])), sum(g.op('Mul', [sumR, bC]))]);
  const s2 = g.op('Add', [
    g.op('Add', [
      g.op('Add', [g.op('Mul', [kk, g.op('ReduceSumSquare', [a], { keepdims: 0 })]),
        g.op('Mul', [n, g.op('ReduceSumSquare', [b], { keepdims: 0 })])]),
      g.op('Mul', [d(2), g.op('Mul', [sumA, sumB])]),
    ]),
    g.op('Sub', [g.op('Mul', [d(4), pp]), g.op('Mul', [d(4), cross])]),
  ]);
  const count = g.op('Mul', [n, kk]);
  const mean = g.op('Div', [s1, count]);
  const variance = g.op('Max', [g.op('Sub', [g.op('Div', [s2, count]), g.op('Mul', [mean, mean])]), d(0)]);
  const std = g.op('Add', [g.op('Sqrt', [variance]), d(1e-6)]);
  const kappa64 = g.op('Div', [g.op('Mul', [d(2), g.op('Cast', [options.epsilon], { to: 11 })]), std]);
  const kappa = dtype === 'float64' ? kappa64 : g.op('Cast', [kappa64], { to: onnxTypeCode(dtype) });

  // E = exp(kappa p - rowmax), u0 = alpha normalised to max 1.
  const scaled = g.op('Gemm', [g.op('Mul', [points, kappa]), codebook], { transB: 1 }); // [N, K] kappa p
  const rowMax = g.op('ReduceMax', [scaled], { axes: [1], keepdims: 1 });
  const kernel = g.op('Exp', [g.op('Sub', [scaled, rowMax])]);
  const aT = g.op('ReduceSumSquare', [points], { axes: [1], keepdims: 1 });
  const logAlpha = g.op('Sub', [rowMax, g.op('Mul', [aT, g.op('Mul', [kappa, scalar(g, dtype, 0.5)])])]);
  let u = g.op('Exp', [g.op('Sub', [logAlpha, g.op('ReduceMax', [logAlpha], { keepdims: 1 })])]); // [N, 1]

  const tiny = scalar(g, dtype, 1e-30);
  const asRow = g.int64([1, -1]);
  const asColumn = g.int64([-1, 1]);
  let v = '';
  for (let t = 0; t < iterations; t++) {
    const colSums = g.op('MatMul', [g.op('Reshape', [u, asRow]), kernel]); // [1, K]
    v = g.op('Reciprocal', [g.op('Max', [colSums, tiny])]);
    if (t + 1 < iterations) {
      const rowSums = g.op('MatMul', [kernel, g.op('Reshape', [v, asColumn])]); // [N, 1]
      u = g.op('Reciprocal', [g.op('Max', [rowSums, tiny])]);
    }
  }
  return g.op('ArgMax', [g.op('Mul', [kernel, v])], { axis: 1, keepdims: 1, select_last_index: 0 });
}

/** Nearest codeword (argmin of squared L2; ties to the lowest index): int64 [N, 1]. */
export function appendArgminLabels(g: GraphBuilder, points: string, codebook: string): string {
  // ||r||^2 is constant per row, so argmin_j ||r - c_j||^2 = argmin_j (||c_j||^2 - 2 r . c_j).
  const cNorm = g.op('ReduceSumSquare', [codebook], { axes: [1], keepdims: 0 });
  const dist = g.op('Gemm', [points, codebook, cNorm], { transB: 1, alpha: attr.float(-2), beta: attr.float(1) });
  return g.op('ArgMin', [dist], { axis: 1, keepdims: 1, select_last_index: 0 });
}
