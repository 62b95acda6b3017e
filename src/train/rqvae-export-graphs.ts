/**
 * Inference graphs of a trained RQ-VAE / VQ-VAE, with the parameters stored as initializers (opset 17):
 *
 * encoder.onnx: the model-bundle contract of src/numeric/residual-encoder.ts, computed in the latent space:
 *   input `embedding` float32 [N, D] -> (x / max(||x||, 1e-12) when normalize = 'l2') -> encoder MLP -> z [N, H]
 *   per level, with r = z first:  dist = ||r||^2 - 2 r C_l^T + ||C_l||^2  (one Gemm with the stored squared norms
 *   as bias, + ReduceSumSquare(r)); TopK(M, smallest, sorted); code = first of the top M; r -= C_l[code]
 *   outputs `codes` int64 [N, L], `top_codes` int64 [N, L, M], `top_distances` float32 [N, L, M] (squared L2 in the
 *   latent space, clamped at 0, ascending). Codes are argmin (no Sinkhorn at inference).
 * decoder.onnx: input `codes` int64 [N, L] -> sum of the codewords -> decoder MLP -> `embedding` float32 [N, D]
 *   (the reconstruction, in the normalised space when normalize = 'l2'), for FORGE's Embedding HitRate.
 * beam.onnx: the level-wise beam of src/numeric/beam-graph.ts with the encoder MLP as its latent map.
 * latent graph (training only): `embedding` -> `latent` [N, H], the encoder MLP alone.
 *
 * The trainer computes its inference-mode codes with exactly the encoder built here, so the exported bundle
 * reproduces them. Never run the encoder on N = 0 rows (ORT 1.30 CPU TopK crashes the process).
 */
import { buildBeamGraph } from '../numeric/beam-graph.ts';
import { appendMlpForward, type DenseLayer } from '../numeric/dense-graph.ts';
import { GraphBuilder } from '../numeric/onnx-builder.ts';
import { appendResidualQuantizer, ENCODER_INPUT } from '../numeric/residual-encoder.ts';
import { paramView, type ParamLayout, type RqVaeShape } from './rqvae-model.ts';

export const DECODER_INPUT = 'codes';
export const DECODER_OUTPUT = 'embedding';
export const LATENT_OUTPUT = 'latent';
export const EXPORT_OPSET = 17;

export interface TrainedModel {
  shape: RqVaeShape;
  layout: ParamLayout;
  /** The flat parameter array (see rqvae-model.ts). */
  params: Float32Array;
  normalize: 'l2' | 'none';
}

function addParams(g: GraphBuilder, model: TrainedModel, layers: readonly DenseLayer[]): void {
  for (const layer of layers) {
    for (const name of [layer.weight, layer.bias]) {
      const spec = model.layout.byName.get(name)!;
      g.initializer(name, paramView(model.params, spec).slice(), spec.dims);
    }
  }
}

function appendInput(g: GraphBuilder, model: TrainedModel): string {
  const x = g.input(ENCODER_INPUT, 'float32', ['N', model.shape.inputDim]);
  if (model.normalize !== 'l2') return x;
  const ss = g.op('ReduceSumSquare', [x], { axes: [1], keepdims: 1 });
  return g.op('Div', [x, g.op('Max', [g.op('Sqrt', [ss]), g.float32([1e-12], [])])]);
}

/** encoder.onnx (see module doc). */
export function buildVaeEncoder(model: TrainedModel, topM: number, metadata: Record<string, string> = {}): Uint8Array {
  const { shape, layout } = model;
  const sizes = shape.codebookSizes;
  const h = shape.latentDim;
  const g = new GraphBuilder('rqvae_encoder');
  addParams(g, model, layout.encoder);
  const z = appendMlpForward(g, appendInput(g, model), layout.encoder).output;
  const codebooks = layout.codebooks.map((name) => ({ name, data: paramView(model.params, layout.byName.get(name)!).slice() }));
  appendResidualQuantizer(g, z, codebooks, h, topM);
  return g.serialize({
    opset: EXPORT_OPSET,
    docString: `RQ-VAE encoder: ${shape.inputDim}-${[...(shape.inputProjection ? [`pca${shape.inputProjection}`] : []), ...shape.hidden].join('-')}-${h}, `
      + `${sizes.length} levels x [${sizes.join(', ')}], `
      + `normalize ${model.normalize}`,
    metadata,
  });
}

/** decoder.onnx (see module doc). */
export function buildVaeDecoder(model: TrainedModel, metadata: Record<string, string> = {}): Uint8Array {
  const { shape, layout } = model;
  const levels = shape.codebookSizes.length;
  const g = new GraphBuilder('rqvae_decoder');
  const codes = g.input(DECODER_INPUT, 'int64', ['N', levels]);
  let s = '';
  for (let l = 0; l < levels; l++) {
    const spec = layout.byName.get(layout.codebooks[l]!)!;
    const c = g.initializer(spec.name, paramView(model.params, spec).slice(), spec.dims);
    const column = g.op('Gather', [codes, g.int64([l], [])], { axis: 1 }); // [N]
    const q = g.op('Gather', [c, column], { axis: 0 });
    s = s === '' ? q : g.op('Add', [s, q]);
  }
  addParams(g, model, layout.decoder);
  g.output(appendMlpForward(g, s, layout.decoder).output, 'float32', ['N', shape.inputDim], DECODER_OUTPUT);
  return g.serialize({ opset: EXPORT_OPSET, docString: 'RQ-VAE decoder: SID codes -> reconstructed embedding', metadata });
}

/**
 * beam.onnx (src/numeric/beam-graph.ts, `expand: "beam"`): the level-wise beam over code prefixes, run in the
 * latent space: its `latent` fragment is the encoder MLP with the trained weights.
 */
export function buildVaeBeam(model: TrainedModel, metadata: Record<string, string> = {}): Uint8Array {
  const { shape, layout, params } = model;
  return buildBeamGraph({
    codebooks: layout.codebooks.map((name) => paramView(params, layout.byName.get(name)!).slice()),
    inputDim: shape.inputDim,
    normalize: model.normalize,
    latent: (g, x) => {
      addParams(g, model, layout.encoder);
      return { output: appendMlpForward(g, x, layout.encoder).output, dim: shape.latentDim };
    },
    opset: EXPORT_OPSET,
    metadata,
  });
}

/** The encoder MLP alone: `embedding` -> `latent` (the trainer initialises codebooks on it). */
export function buildLatentGraph(model: TrainedModel): Uint8Array {
  const g = new GraphBuilder('rqvae_latent');
  addParams(g, model, model.layout.encoder);
  const z = appendMlpForward(g, appendInput(g, model), model.layout.encoder).output;
  g.output(z, 'float32', ['N', model.shape.latentDim], LATENT_OUTPUT);
  return g.serialize({ opset: EXPORT_OPSET });
}
