/**
 * One ONNX model that answers a beam query in a single ORT run: a bundle's encoder.onnx (for the query's own codes)
 * and its beam.onnx (beam-graph.ts), merged in memory. Both files stay as they are on disk; the encoder pool builds
 * this when it starts (src/tokenizer/beam-query.ts) and its CPU workers load it.
 *
 * Inputs: the beam graph's (`embedding` float32 [N, D], shared by both parts; `beam_width` int64 [1];
 * `norm_weight` float32 [1]). The beam part's names get the prefix `beam/`; with `dedupe` (default), its
 * initializers equal to the encoder's (the RQ-VAE encoder MLP, small constants) are shared, so ORT's
 * common-subexpression pass computes the normalisation and the MLP once.
 *
 * Outputs (`packed: true`, the default): the whole answer in two flat tensors, cut apart by the caller:
 *   `packed_codes` int32 [N·L + Σ_l N·B_l·l]: the encoder's codes [N, L], then each level's beam_codes_<l> [N, B_l, l];
 *   `packed_scores` float32 [Σ_l N·B_l]: each level's beam_scores_<l> [N, B_l].
 * With `packed: false`: the encoder's `codes` and the beam's `beam_codes_<l>` / `beam_scores_<l>` as in the two files.
 * The encoder's top-M outputs are not outputs here: the nodes only they need are dropped (ORT would run them), and its
 * codes are taken by ArgMin where it took them from a TopK (codes-model.ts firstIndexAsArgMin): the same codes.
 */
import onnxProto from 'onnx-proto';
import { firstIndexAsArgMin, versions } from './codes-model.ts';
import { GraphBuilder } from './onnx-builder.ts';
import { BEAM_INPUTS, beamCodesOutput, beamScoresOutput } from './beam-graph.ts';
import { ENCODER_INPUT, ENCODER_OUTPUTS } from './residual-encoder.ts';

const { onnx } = onnxProto;
export const PACKED_OUTPUTS = { codes: 'packed_codes', scores: 'packed_scores' } as const;
const BEAM_PREFIX = 'beam/';
const INT32 = 6;

export interface BeamQueryOptions {
  packed?: boolean;
  dedupe?: boolean;
}

/** Both graphs decoded, or an error saying why they cannot be merged (other domains, opsets or IR versions). */
function mergeableGraphs(encoderBytes: Uint8Array, beamBytes: Uint8Array): { encoder: onnxProto.onnx.IGraphProto; beam: onnxProto.onnx.IGraphProto; opset: number } {
  const encoder = onnx.ModelProto.decode(encoderBytes);
  const beam = onnx.ModelProto.decode(beamBytes);
  const a = versions(encoder, 'encoder.onnx');
  const b = versions(beam, 'beam.onnx');
  if (a.opset !== b.opset || a.ir !== b.ir) {
    throw new Error(`encoder.onnx (opset ${a.opset}, IR ${a.ir}) and beam.onnx (opset ${b.opset}, IR ${b.ir}) differ`);
  }
  if (a.ir > onnx.Version.IR_VERSION) throw new Error(`IR version ${a.ir} is newer than the builder's ${onnx.Version.IR_VERSION}`);
  if (!encoder.graph || !beam.graph) throw new Error('encoder.onnx or beam.onnx has no graph');
  return { encoder: encoder.graph, beam: beam.graph, opset: a.opset };
}

/** Builds the merged model of the module doc from the two serialized models; throws when they cannot be merged. */
export function buildBeamQueryModel(encoderBytes: Uint8Array, beamBytes: Uint8Array, levels: number,
  options: BeamQueryOptions = {}): Uint8Array {
  const { encoder, beam, opset } = mergeableGraphs(encoderBytes, beamBytes);
  const outputs = new Set(Array.from({ length: levels }, (_, l) => [beamCodesOutput(l + 1), beamScoresOutput(l + 1)]).flat());
  const beamOutputs = (beam.output ?? []).map((o) => o.name ?? '');
  if (beamOutputs.length !== outputs.size || beamOutputs.some((o) => !outputs.has(o))) {
    throw new Error(`beam.onnx: outputs [${beamOutputs.join(', ')}], expected beam_codes_/beam_scores_ 1..${levels}`);
  }

  const packed = options.packed ?? true;
  const g = new GraphBuilder('sidx_beam_query');
  const keep = (name: string) => name === ENCODER_INPUT || (!packed && outputs.has(name))
    || name === BEAM_INPUTS.width || name === BEAM_INPUTS.normWeight;
  g.adopt(firstIndexAsArgMin(encoder), (name) => name); // the codes without the encoder's TopK (codes-model.ts)
  g.adopt(beam, (name) => (keep(name) ? name : `${BEAM_PREFIX}${name}`), { dedupe: options.dedupe ?? true });
  const beamValue = (name: string) => (packed ? `${BEAM_PREFIX}${name}` : name);
  if (!packed) {
    g.output(ENCODER_OUTPUTS.codes, 'int64', ['N', levels]);
    for (let l = 1; l <= levels; l++) {
      g.output(beamCodesOutput(l), 'int64', ['N', `B${l}`, l]);
      g.output(beamScoresOutput(l), 'float32', ['N', `B${l}`]);
    }
  } else {
    const flat = g.int64([-1]);
    const flatConcat = (values: string[]) => g.op('Concat', values.map((v) => g.op('Reshape', [v, flat])), { axis: 0 });
    const codes = [ENCODER_OUTPUTS.codes, ...Array.from({ length: levels }, (_, l) => beamValue(beamCodesOutput(l + 1)))];
    const scores = Array.from({ length: levels }, (_, l) => beamValue(beamScoresOutput(l + 1)));
    g.output(g.op('Cast', [flatConcat(codes)], { to: INT32 }), 'int32', ['P'], PACKED_OUTPUTS.codes);
    g.output(flatConcat(scores), 'float32', ['S'], PACKED_OUTPUTS.scores);
  }
  g.prune();
  return g.serialize({ opset, docString: 'sidx beam query: encoder.onnx codes + beam.onnx, one run' });
}

export const LATENT_QUERY_OUTPUTS = { codes: 'query_codes', latent: 'query_latent' } as const;

/** The latent query model's level-l output of the encoder's quantizer Gemm (when crossNorms is set). */
export function latentCrossOutput(l: number): string {
  return `query_cross_${l}`;
}

/** What a native beam (native/src/beam_search.h) needs besides the latent: beam.onnx's codebooks, K_l x dim each. */
export interface LatentQueryModel {
  /** ONNX model: `embedding` -> `query_codes` int32 [N, L] (the encoder's own) and `query_latent` float32 [N, dim]. */
  model: Uint8Array;
  codebooks: Float32Array[];
  dim: number;
  /**
   * Set when the encoder quantises with the beam's own codebooks by sidx's Gemm (-2 r C_l^T + ||C_l||^2, bias
   * `codebook_<l>_sqnorm`): the model then also outputs each level's Gemm result (latentCrossOutput), and these are
   * the ||c||^2 it adds; the native beam derives its codeword dot products from them instead of reading the codebooks.
   */
  crossNorms?: Float32Array[];
}

/** An initializer's floats, wherever the file keeps them. */
function floatsOf(t: onnxProto.onnx.ITensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) return new Float32Array(new Uint8Array(t.rawData).buffer); // a copy: rawData may be a Buffer view
  return Float32Array.from(t.floatData ?? []);
}

/**
 * The query model of a native beam: the encoder's codes and the beam's latent z (the first input of the level-1
 * Gemm against `codebook_0`, see beam-graph.ts) in one ORT run; the beam's own nodes are pruned away. With the shared
 * initializers, ORT computes the normalisation and the MLP once, as in the merged model.
 */
export function buildLatentQueryModel(encoderBytes: Uint8Array, beamBytes: Uint8Array, levels: number,
  options: { argMinCodes?: boolean } = {}): LatentQueryModel {
  const { encoder, beam, opset } = mergeableGraphs(encoderBytes, beamBytes);
  const inits = new Map((beam.initializer ?? []).map((t) => [t.name ?? '', t]));
  const codebooks = Array.from({ length: levels }, (_, l) => {
    const t = inits.get(`codebook_${l}`);
    if (!t || t.dims?.length !== 2 || t.dataType !== onnx.TensorProto.DataType.FLOAT) throw new Error(`beam.onnx: no float codebook_${l} [K, dim]`);
    return floatsOf(t);
  });
  const dim = Number(inits.get('codebook_0')!.dims![1]);
  if (codebooks.some((c, l) => c.length !== Number(inits.get(`codebook_${l}`)!.dims![0]) * dim)) throw new Error('beam.onnx: codebooks of different widths');
  const gemm = (beam.node ?? []).find((n) => n.opType === 'Gemm' && n.input?.[1] === 'codebook_0');
  if (!gemm?.input?.[0]) throw new Error('beam.onnx: no level-1 Gemm against codebook_0');
  const g = new GraphBuilder('sidx_latent_query');
  g.adopt(options.argMinCodes === false ? encoder : firstIndexAsArgMin(encoder), (name) => name); // false: as encoder.onnx (A/B)
  const keep = (name: string) => name === ENCODER_INPUT;
  g.adopt(beam, (name) => (keep(name) ? name : `${BEAM_PREFIX}${name}`), { dedupe: true });
  g.output(g.op('Cast', [ENCODER_OUTPUTS.codes], { to: INT32 }), 'int32', ['N', levels], LATENT_QUERY_OUTPUTS.codes);
  const z = gemm.input[0];
  g.output(keep(z) ? z : `${BEAM_PREFIX}${z}`, 'float32', ['N', dim], LATENT_QUERY_OUTPUTS.latent);
  const quantizer = quantizerGemms(encoder, codebooks, dim);
  quantizer?.outputs.forEach((name, l) => g.output(name, 'float32', ['N', codebooks[l]!.length / dim], latentCrossOutput(l)));
  g.prune({ inputs: true }); // beam_width and norm_weight: the addon takes them
  return { model: g.serialize({ opset, docString: 'sidx latent query: encoder.onnx codes + the beam\'s latent, one run' }), codebooks, dim, crossNorms: quantizer?.norms };
}

/**
 * Per level, the encoder's quantizer Gemm over the same codebook as the beam's (`codebook_<l>`, equal floats):
 * Gemm(r, codebook_<l>, codebook_<l>_sqnorm) with alpha -2, beta 1, transB 1 (residual-encoder.ts and the RQ-VAE
 * export both write it); its output names and the sqnorm values. Undefined when any level differs from that.
 */
function quantizerGemms(encoder: onnxProto.onnx.IGraphProto, codebooks: Float32Array[], dim: number): { outputs: string[]; norms: Float32Array[] } | undefined {
  const inits = new Map((encoder.initializer ?? []).map((t) => [t.name ?? '', t]));
  const attr = (node: onnxProto.onnx.INodeProto, name: string, fallback: number) => {
    const a = node.attribute?.find((x) => x.name === name);
    return a === undefined ? fallback : a.type === onnx.AttributeProto.AttributeType.FLOAT ? Number(a.f) : Number(a.i);
  };
  const outputs: string[] = [];
  const norms: Float32Array[] = [];
  for (let l = 0; l < codebooks.length; l++) {
    const [book, sqnorm] = [`codebook_${l}`, `codebook_${l}_sqnorm`];
    const gemm = (encoder.node ?? []).find((n) => n.opType === 'Gemm' && n.input?.[1] === book && n.input?.[2] === sqnorm);
    const stored = inits.get(book);
    const bias = inits.get(sqnorm);
    if (!gemm?.output?.[0] || !stored || !bias || stored.dataType !== onnx.TensorProto.DataType.FLOAT || bias.dataType !== onnx.TensorProto.DataType.FLOAT) return undefined;
    if (attr(gemm, 'alpha', 1) !== -2 || attr(gemm, 'beta', 1) !== 1 || attr(gemm, 'transA', 0) !== 0 || attr(gemm, 'transB', 0) !== 1) return undefined;
    const same = floatsOf(stored);
    const k = codebooks[l]!.length / dim;
    if (same.length !== codebooks[l]!.length || !same.every((v, i) => Object.is(v, codebooks[l]![i]))) return undefined;
    const n = floatsOf(bias);
    if (n.length !== k) return undefined;
    outputs.push(gemm.output[0]);
    norms.push(n);
  }
  return { outputs, norms };
}

/** Lengths of the two packed outputs for `n` rows and beam widths `widths` (one per level). */
export function packedLengths(n: number, widths: readonly number[]): { codes: number; scores: number } {
  let codes = n * widths.length;
  let scores = 0;
  widths.forEach((w, l) => {
    codes += n * w * (l + 1);
    scores += n * w;
  });
  return { codes, scores };
}

/** Per-level beam widths for `width`: B_l = min(width, B_{l-1} * K_l), as the beam graph keeps them. */
export function beamWidths(width: number, codebookSizes: readonly number[]): number[] {
  let prefixes = 1;
  return codebookSizes.map((k) => (prefixes = Math.min(width, prefixes * k)));
}
