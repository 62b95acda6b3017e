/**
 * The RQ-KMeans encoder as an ONNX graph (opset 17), the `encoder.onnx` of an rqkmeans model bundle.
 *
 * Input `embedding` float32 [N, D]. Optionally rows are L2-normalised (x / max(||x||, 1e-12)). Then per level l
 * with codebook C_l [K_l, D] and residual r (initially x):
 *   cross = -2 r C_l^T + ||C_l||^2                 (one Gemm against the stored C_l with transB=1, alpha=-2 and the
 *                                                  precomputed ||C_l||^2 as bias)
 *   top_l, topCross_l = TopK(cross, M, smallest, sorted)   M = min(topM, min_l K_l), same M at every level
 *   topDist_l = topCross_l + ||r||^2               (only the M kept per row get the row's constant)
 *   code_l = top_l[:, 0]                            (the argmin; taken from TopK so codes and top_codes[:, l, 0]
 *                                                  always agree, ties included)
 *   r -= Gather(C_l, code_l)
 * ||r||^2 is summed once, over the input (for l2-normalised rows from the sum the normalisation took); after that
 * the next residual's squared norm is the chosen code's distance, topDist_l[:, 0]. Summing it at every level took
 * 11% of a 3 x 256 x 512 encoder's run and adding it to all K distances 2% (ORT's profiler, docs/benchmarks.md).
 * Outputs: `codes` int64 [N, L], `top_codes` int64 [N, L, M], `top_distances` float32 [N, L, M] (squared L2,
 * clamped at 0; ascending per level).
 *
 * Never run it on N = 0 rows: ORT 1.30's CPU TopK then divides by zero and the whole process dies (SIGFPE);
 * EncoderPool answers empty batches without calling ORT.
 *
 * Gemm with transB lets the model hold each codebook once (it serves both the distance product and the Gather);
 * ORT pre-packs the constant B either way.
 */
import { GraphBuilder, attr } from './onnx-builder.ts';

export interface ResidualEncoderSpec {
  /** Per level, the codebook as row-major K_l × dim floats. */
  codebooks: readonly Float32Array[];
  dim: number;
  normalize: 'l2' | 'none';
  /** How many nearest codes per level to report; clipped to the smallest codebook size. */
  topM: number;
  /** ONNX opset, 17 unless told (the graph uses only ops stable since opset 13). */
  opset?: number;
  /** Stored as model metadata. */
  metadata?: Record<string, string>;
}

export const ENCODER_INPUT = 'embedding';
export const ENCODER_OUTPUTS = { codes: 'codes', topCodes: 'top_codes', topDistances: 'top_distances' } as const;

/** The M that an encoder built with `topM` over these codebook sizes reports per level. */
export function effectiveTopM(topM: number, codebookSizes: readonly number[]): number {
  return Math.min(topM, ...codebookSizes);
}

/** Codebook sizes K_l from flat codebooks; throws when a codebook is not a whole number of `dim` rows. */
export function codebookSizesOf(codebooks: readonly Float32Array[], dim: number): number[] {
  return codebooks.map((c, l) => {
    if (c.length === 0 || c.length % dim !== 0) {
      throw new RangeError(`codebook ${l}: length ${c.length} is not a positive multiple of dim ${dim}`);
    }
    return c.length / dim;
  });
}

/** Row-wise squared norms of a row-major [k, dim] matrix. */
export function rowSquaredNorms(m: Float32Array, k: number, dim: number): Float32Array {
  const out = new Float32Array(k);
  for (let i = 0; i < k; i++) {
    let s = 0;
    const o = i * dim;
    for (let j = 0; j < dim; j++) s += m[o + j]! * m[o + j]!;
    out[i] = s;
  }
  return out;
}

/** One level's codebook as a graph stores it: initializer `name`, K × dim row-major floats. */
export interface NamedCodebook {
  name: string;
  data: Float32Array;
}

/**
 * Appends the residual quantizer of the module doc over `input` [N, dim] to `g`, with the outputs `codes`,
 * `top_codes` and `top_distances`. Level l stores its codebook as `name` and the squared row norms as `${name}_sqnorm`.
 * `inputSqNorm`: the rows' squared norms [N, 1] where the graph has them already (else they are summed here).
 */
export function appendResidualQuantizer(
  g: GraphBuilder, input: string, codebooks: readonly NamedCodebook[], dim: number, topM: number, inputSqNorm?: string,
): void {
  const sizes = codebookSizesOf(codebooks.map((c) => c.data), dim);
  const levels = codebooks.length;
  const m = effectiveTopM(topM, sizes);
  const k = g.int64([m]);
  const axis1 = g.int64([1]);
  const first = { starts: g.int64([0]), ends: g.int64([1]) };
  const zero = g.float32([0], []);
  const codeCols: string[] = [];
  const topCodeCols: string[] = [];
  const topDistCols: string[] = [];
  let r = input;
  let rNorm = inputSqNorm ?? g.op('ReduceSumSquare', [input], { axes: [1], keepdims: 1 }); // [N, 1]
  for (let l = 0; l < levels; l++) {
    const { name, data } = codebooks[l]!;
    const c = g.initializer(name, data, [sizes[l]!, dim]);
    const cNorm = g.initializer(`${name}_sqnorm`, rowSquaredNorms(data, sizes[l]!, dim), [sizes[l]!]);
    const cross = g.op('Gemm', [r, c, cNorm], { transB: 1, alpha: attr.float(-2), beta: attr.float(1) });
    const [topCross, topIdx] = g.node('TopK', [cross, k], 2, { axis: 1, largest: 0, sorted: 1 }) as [string, string];
    const topDist = g.op('Add', [topCross, rNorm]);
    const code = g.op('Slice', [topIdx, first.starts, first.ends, axis1]); // [N, 1]
    codeCols.push(code);
    topCodeCols.push(g.op('Unsqueeze', [topIdx, axis1]));
    topDistCols.push(g.op('Unsqueeze', [g.op('Max', [topDist, zero]), axis1]));
    if (l + 1 < levels) {
      const chosen = g.op('Gather', [c, g.op('Squeeze', [code, axis1])], { axis: 0 });
      r = g.op('Sub', [r, chosen]);
      rNorm = g.op('Slice', [topDist, first.starts, first.ends, axis1]);
    }
  }

  const concat = (cols: string[]): string => (cols.length === 1 ? cols[0]! : g.op('Concat', cols, { axis: 1 }));
  g.output(concat(codeCols), 'int64', ['N', levels], ENCODER_OUTPUTS.codes);
  g.output(concat(topCodeCols), 'int64', ['N', levels, m], ENCODER_OUTPUTS.topCodes);
  g.output(concat(topDistCols), 'float32', ['N', levels, m], ENCODER_OUTPUTS.topDistances);
}

/** Builds the encoder and returns the serialized ONNX model. */
export function buildResidualEncoder(spec: ResidualEncoderSpec): Uint8Array {
  const { codebooks, dim, normalize } = spec;
  if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
  if (codebooks.length === 0) throw new RangeError('at least one codebook (level) is required');
  if (!Number.isInteger(spec.topM) || spec.topM < 1) throw new RangeError(`topM must be >= 1, got ${spec.topM}`);
  const sizes = codebookSizesOf(codebooks, dim);
  const levels = codebooks.length;

  const g = new GraphBuilder('rq_kmeans_encoder');
  const x = g.input(ENCODER_INPUT, 'float32', ['N', dim]);
  let r = x;
  let rNorm: string | undefined;
  if (normalize === 'l2') {
    const ss = g.op('ReduceSumSquare', [x], { axes: [1], keepdims: 1 });
    const norm = g.op('Max', [g.op('Sqrt', [ss]), g.float32([1e-12], [])]);
    r = g.op('Div', [x, norm]);
    rNorm = g.op('Div', [ss, g.op('Mul', [norm, norm])]);
  }
  appendResidualQuantizer(g, r, codebooks.map((data, l) => ({ name: `codebook_${l}`, data })), dim, spec.topM, rNorm);
  return g.serialize({
    opset: spec.opset ?? 17,
    docString: `RQ-KMeans encoder: ${levels} levels x [${sizes.join(', ')}] codes, dim ${dim}, normalize ${normalize}`,
    metadata: spec.metadata,
  });
}
