/**
 * The level-wise beam over residual code prefixes as an ONNX graph (opset 17): `beam.onnx` of a model bundle.
 * Like FAISS's residual coarse quantizer, it keeps the B best code prefixes per level instead of the single
 * greedy path the encoder follows, so retrieval can visit the cells nearest the query in score order.
 *
 * Inputs: `embedding` float32 [N, D]; `beam_width` int64 [1] (B: TopK's K is an input, so the width is a
 * per-call choice); `norm_weight` float32 [1] (w, see below).
 * The query z is the embedding (L2-normalised first when the bundle normalises), or, for bundles whose codebooks
 * live in a latent space, the output of a `latent` fragment the caller appends (the encoder MLP).
 *
 * Score of a prefix with codeword sum s (lower is better):  score(s) = ||z||^2 - 2 <z, s> + w ||s||^2
 *   w = 1: ||z - s||^2, the squared distance to the prefix's reconstruction (residual distance, FAISS RCQ);
 *   w = 0: ||z||^2 - 2 <z, s>, i.e. ranking by the partial inner product <z, s>.
 * Level 1: score = Gemm(z, C_1^T, alpha -2, bias w ||C_1||^2) + ||z||^2; keep the best B1 = min(B, K_1).
 * Level l > 1: a child (parent p, code c) scores score(p) + (-2 <z, c> + w ||c||^2) + 2 w <s_p, c>: the middle
 * term is one Gemm of z [N, H] against C_l^T; <s_p, c> = sum over the parent's levels j of <C_j[code_j], c>, read
 * from precomputed tables C_j C_l^T [K_j, K_l] (FAISS's beam LUT; Gathers, no work in H) when the tables fit in
 * `lutMaxBytes`, else one Gemm of the parents' codeword sums [N * B_{l-1}, H] against C_l^T. Then TopK over the
 * B_{l-1} * K_l children of each row: B_l = min(B, B_{l-1} * K_l); parent = index / K_l, code = index mod K_l.
 * Outputs per level l = 1..L: `beam_codes_<l>` int64 [N, B_l, l] (the prefixes, best first) and
 * `beam_scores_<l>` float32 [N, B_l] (their scores, ascending).
 *
 * Cost per level: N * K_l * H multiply-adds plus N * B * K_l * l table reads (N * B * K_l * H multiply-adds
 * without tables); never a scan of the occupied SIDs. Never run it on N = 0 rows
 * (ORT 1.30's CPU TopK then crashes the process with SIGFPE): the encoder pool answers empty batches itself.
 */
import { GraphBuilder, attr } from './onnx-builder.ts';
import { codebookSizesOf, ENCODER_INPUT, rowSquaredNorms } from './residual-encoder.ts';

export const BEAM_INPUTS = { embedding: ENCODER_INPUT, width: 'beam_width', normWeight: 'norm_weight' } as const;
export const beamCodesOutput = (level: number): string => `beam_codes_${level}`;
export const beamScoresOutput = (level: number): string => `beam_scores_${level}`;
/** ONNX metadata key holding the sha256 of the encoder.onnx the beam was built beside (checked at bundle load). */
export const BEAM_ENCODER_DIGEST_KEY = 'sidx.encoder_sha256';

export interface BeamGraphSpec {
  /** Per level, the codebook as row-major K_l × latentDim floats (the encoder's codebooks). */
  codebooks: readonly Float32Array[];
  /** Dimension of the `embedding` input. */
  inputDim: number;
  normalize: 'l2' | 'none';
  /**
   * Appends the map from the (normalised) input to the codebooks' space and returns its value name and width;
   * omitted for RQ-KMeans, whose codebooks live in the input space.
   */
  latent?: (g: GraphBuilder, x: string) => { output: string; dim: number };
  /** Largest total size of the C_j C_l^T tables; above it the graph uses a Gemm per level. Default 64 MiB. */
  lutMaxBytes?: number;
  opset?: number;
  metadata?: Record<string, string>;
}

/** C_a C_b^T as a row-major [K_a, K_b] float32 table (float64 accumulation). */
function dotTable(a: Float32Array, b: Float32Array, dim: number): Float32Array {
  const ka = a.length / dim;
  const kb = b.length / dim;
  const out = new Float32Array(ka * kb);
  for (let i = 0; i < ka; i++) {
    for (let j = 0; j < kb; j++) {
      let acc = 0;
      for (let d = 0; d < dim; d++) acc += a[i * dim + d]! * b[j * dim + d]!;
      out[i * kb + j] = acc;
    }
  }
  return out;
}

/** Builds the beam graph and returns the serialized ONNX model. */
export function buildBeamGraph(spec: BeamGraphSpec): Uint8Array {
  const { codebooks, inputDim, normalize } = spec;
  if (!Number.isInteger(inputDim) || inputDim <= 0) throw new RangeError(`inputDim must be a positive integer, got ${inputDim}`);
  if (codebooks.length === 0) throw new RangeError('at least one codebook (level) is required');

  const g = new GraphBuilder('sid_beam');
  const x = g.input(BEAM_INPUTS.embedding, 'float32', ['N', inputDim]);
  const width = g.input(BEAM_INPUTS.width, 'int64', [1]);
  const w = g.input(BEAM_INPUTS.normWeight, 'float32', [1]);
  let z = x;
  if (normalize === 'l2') {
    const ss = g.op('ReduceSumSquare', [x], { axes: [1], keepdims: 1 });
    z = g.op('Div', [x, g.op('Max', [g.op('Sqrt', [ss]), g.float32([1e-12], [])])]);
  }
  let dim = inputDim;
  if (spec.latent) ({ output: z, dim } = spec.latent(g, z));
  const sizes = codebookSizesOf(codebooks, dim);
  const levels = codebooks.length;
  let lutBytes = 0;
  for (let l = 1; l < levels; l++) for (let j = 0; j < l; j++) lutBytes += 4 * sizes[j]! * sizes[l]!;
  const useLut = lutBytes <= (spec.lutMaxBytes ?? 64 << 20);

  const axis0 = g.int64([0]);
  let axis1Name = '';
  const axis1 = () => (axis1Name ||= g.int64([1])); // only multi-level graphs use it (ORT warns on unused constants)
  const axis2 = g.int64([2]);
  const one = g.int64([1]);
  const zNorm = g.op('ReduceSumSquare', [z], { axes: [1], keepdims: 1 }); // [N, 1]
  const nScalar = g.op('Gather', [g.op('Shape', [z]), g.int64([0], [])], { axis: 0 }); // N, rank 0
  /** min(B, columns of `scores`) as the [1] tensor TopK wants. */
  const keep = (scores: string) => g.op('Min', [width, g.op('Slice', [g.op('Shape', [scores]), one, g.int64([2]), axis0])]);

  let codes = ''; // [N, B_{l-1}, l-1] prefixes
  let scores = ''; // [N, B_{l-1}]
  let sums = ''; // [N, B_{l-1}, H] codeword sums of the prefixes (only without tables)
  const twoW = levels > 1 ? g.op('Mul', [w, g.float32([2])]) : '';
  for (let l = 0; l < levels; l++) {
    const K = sizes[l]!;
    const c = g.initializer(`codebook_${l}`, codebooks[l]!, [K, dim]);
    const cNorm = g.initializer(`codebook_${l}_sqnorm`, rowSquaredNorms(codebooks[l]!, K, dim), [K]);
    const bias = g.op('Mul', [cNorm, w]); // w ||C_l||^2, [K]
    let children: string; // [N, columns]
    const zc = g.op('Gemm', [z, c, bias], { transB: 1, alpha: attr.float(-2), beta: attr.float(1) }); // [N, K]
    if (l === 0) {
      children = g.op('Add', [zc, zNorm]);
    } else {
      let pair = ''; // [N, Bp, K]: <s_p, c>
      if (useLut) {
        for (let j = 0; j < l; j++) {
          const table = g.initializer(`codebook_${j}_${l}_dot`, dotTable(codebooks[j]!, codebooks[l]!, dim), [sizes[j]!, K]);
          const part = g.op('Gather', [table, g.op('Gather', [codes, g.int64([j], [])], { axis: 2 })], { axis: 0 });
          pair = pair === '' ? part : g.op('Add', [pair, part]);
        }
      } else {
        const flat = g.op('Gemm', [g.op('Reshape', [sums, g.int64([-1, dim])]), c], { transB: 1 }); // [N * Bp, K]
        pair = g.op('Reshape', [flat, g.op('Concat', [g.op('Shape', [scores]), g.int64([K])], { axis: 0 })]);
      }
      const base = g.op('Add', [g.op('Unsqueeze', [scores, axis2]), g.op('Unsqueeze', [zc, axis1()])]);
      children = g.op('Reshape', [g.op('Add', [base, g.op('Mul', [pair, twoW])]), g.int64([0, -1])]);
    }
    const [top, idx] = g.node('TopK', [children, keep(children)], 2, { axis: 1, largest: 0, sorted: 1 }) as [string, string];
    if (l === 0) {
      codes = g.op('Unsqueeze', [idx, axis2]);
      if (levels > 1 && !useLut) sums = g.op('Gather', [c, idx], { axis: 0 });
    } else {
      const kConst = g.int64([K], []);
      const parent = g.op('Div', [idx, kConst]);
      const code = g.op('Mod', [idx, kConst]);
      // Flat row of each parent in the [N * Bp, ...] views: parent + n * Bp.
      const bp = g.op('Gather', [g.op('Shape', [scores]), g.int64([1], [])], { axis: 0 });
      const rowStart = g.op('Unsqueeze', [g.op('Mul', [g.op('Range', [g.int64([0], []), nScalar, g.int64([1], [])]), bp]), axis1()]);
      const flatParent = g.op('Add', [parent, rowStart]); // [N, B_l]
      const parentCodes = g.op('Gather', [g.op('Reshape', [codes, g.int64([-1, l])]), flatParent], { axis: 0 });
      codes = g.op('Concat', [parentCodes, g.op('Unsqueeze', [code, axis2])], { axis: 2 });
      if (l + 1 < levels && !useLut) {
        const parentSums = g.op('Gather', [g.op('Reshape', [sums, g.int64([-1, dim])]), flatParent], { axis: 0 });
        sums = g.op('Add', [parentSums, g.op('Gather', [c, code], { axis: 0 })]);
      }
    }
    scores = top;
    g.output(codes, 'int64', ['N', `B${l + 1}`, l + 1], beamCodesOutput(l + 1));
    g.output(scores, 'float32', ['N', `B${l + 1}`], beamScoresOutput(l + 1));
  }
  return g.serialize({
    opset: spec.opset ?? 17,
    docString: `SID beam: ${levels} levels x [${sizes.join(', ')}] codes, dim ${dim}, normalize ${normalize}`,
    metadata: spec.metadata,
  });
}

/** One level of a beam: `width` prefixes of `level` codes per query row. */
export interface BeamLevel {
  level: number;
  width: number;
  /** n × width × level codes, best prefix first. */
  codes: Int32Array;
  /** n × width scores, ascending. */
  scores: Float32Array;
}

/**
 * Reference beam in float64 plain JS (tests and small checks): the same scores and keep rule as the graph, ties
 * broken by the lower flat index (parent-major, then code).
 */
export function beamReference(z: Float64Array, codebooks: readonly Float32Array[], dim: number, width: number,
  normWeight: number): { codes: number[][]; scores: number[] }[] {
  const zz = z.reduce((a, v) => a + v * v, 0);
  let beam: { codes: number[]; score: number; sum: Float64Array }[] = [{ codes: [], score: zz, sum: new Float64Array(dim) }];
  const out: { codes: number[][]; scores: number[] }[] = [];
  for (const book of codebooks) {
    const K = book.length / dim;
    const next: typeof beam = [];
    for (const p of beam) {
      for (let k = 0; k < K; k++) {
        let cross = 0;
        let cc = 0;
        for (let j = 0; j < dim; j++) {
          const cv = book[k * dim + j]!;
          cross += (z[j]! - normWeight * p.sum[j]!) * cv;
          cc += cv * cv;
        }
        next.push({ codes: [...p.codes, k], score: p.score - 2 * cross + normWeight * cc, sum: p.sum });
      }
    }
    const order = next.map((_, i) => i).sort((a, b) => next[a]!.score - next[b]!.score || a - b);
    beam = order.slice(0, Math.min(width, next.length)).map((i) => {
      const e = next[i]!;
      const k = e.codes[e.codes.length - 1]!;
      const sum = Float64Array.from(e.sum, (v, j) => v + book[k * dim + j]!);
      return { codes: e.codes, score: e.score, sum };
    });
    out.push({ codes: beam.map((b) => b.codes), scores: beam.map((b) => b.score) });
  }
  return out;
}
