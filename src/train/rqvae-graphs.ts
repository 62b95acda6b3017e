/**
 * The RQ-VAE training step as ONE ONNX graph: forward, loss terms and hand-derived gradients of every trainable
 * parameter, run on ONNX Runtime. Inputs: the batch `x` [N, D] (with `denoise`, also its reconstruction target
 * `target` [N, D]: the clean rows of a noisy `x`), every parameter (by its layout name), and rank-0
 * scalars `commit_weight`, `beta` (classic form only) and `sinkhorn_eps` (Sinkhorn only). Outputs: `loss_recon`,
 * `loss_commit` (unweighted), `codes` int64 [N, L] (the training assignment), `grad_<param>` for every trained
 * parameter, and on request per level `level_input_<l>` [N, H] (the residual that level quantises) and, for EMA
 * codebooks, `ema_sums_<l>` [K, H] (sum of the level inputs assigned to each code).
 *
 * Forward (r_0 = z, s_0 = 0; r and s carry no gradient: FORGE quantises a detached copy of z):
 *   z = enc(x);  per level l: code_l = assign(r_l, C_l);  q_l = C_l[code_l];  r_{l+1} = r_l - q_l;  s_{l+1} = s_l + q_l
 *   y = dec(z + sg(s_L - z))      straight-through: the decoder sees s_L, its input gradient goes to z
 *   recon = mean((y - x)^2)       over N x D (denoise: mean((y - target)^2))
 * Note z - s_{l+1} = r_{l+1}: every commitment term is a function of the residual after a level.
 *   forge:   commit = 1/L sum_l [ 0.5 mean((z - sg s_{l+1})^2) + 0.5 mean((sg z - s_{l+1})^2) ]     (FORGE al_sid)
 *            d/dz = 1/(L N H) sum_l r_{l+1};   d/d s_{l+1} = -r_{l+1} / (L N H), so d/dq_j = sum_{l >= j} of that
 *   classic: commit = sum_l [ mean((sg r_l - q_l)^2) + beta mean((r_l - sg q_l)^2) ]    (VQ-VAE/TIGER; the beta term
 *            reaches z only, r_l's dependence on earlier codewords is stopped)
 *            d/dz = 2 beta/(N H) sum_l r_{l+1};  d/dq_l = -2 r_{l+1} / (N H)
 *   With EMA codebooks the codebook half of either form is dropped (FORGE: partial_loss2 = 0) and codebooks get
 *   no gradient; the trainer updates them from `ema_sums_<l>` and the code counts.
 * loss = recon + commit_weight * commit. Codebook gradients are scatter-adds (ScatterND, reduction add) of the
 * per-row gradients of q_l into [K, H].
 */
import { GraphBuilder } from '../numeric/onnx-builder.ts';
import {
  appendMlpBackward, appendMlpForward, rowCount, scalar, zeros, type DenseTrace, type FloatType,
} from '../numeric/dense-graph.ts';
import { appendArgminLabels, appendSinkhornLabels } from '../numeric/sinkhorn-fragment.ts';
import { paramLayout, type ParamLayout, type RqVaeShape } from './rqvae-model.ts';

export type Assignment = 'sinkhorn' | 'argmin';
export type CommitmentForm = 'forge' | 'classic';
export type CodebookUpdate = 'gradient' | 'ema';

export interface QuantizerOptions {
  assignment: Assignment;
  /** Sinkhorn rounds (FORGE: 5); ignored for argmin. */
  sinkhornIterations: number;
  commitment: CommitmentForm;
  codebookUpdate: CodebookUpdate;
}

export interface StepGraphOptions extends QuantizerOptions {
  shape: RqVaeShape;
  /** float32 for training; float64 for the gradient tests. */
  dtype?: FloatType;
  /** Output `level_input_<l>` (needed for dead-code restart); always on with EMA codebooks. */
  levelInputs?: boolean;
  /** Denoising: an input `target` [N, D] is the reconstruction target instead of `x` (a constant: no gradient). */
  denoise?: boolean;
}

export interface StepGraph {
  bytes: Uint8Array;
  /** Every graph input name (the trainer feeds exactly these). */
  inputs: string[];
  /** Parameters that receive a gradient output `grad_<name>`. */
  trained: string[];
}

/** Shared by the reconstruction and the contrastive step. */
export interface GraphContext {
  g: GraphBuilder;
  layout: ParamLayout;
  shape: RqVaeShape;
  dtype: FloatType;
  options: QuantizerOptions;
  inputs: string[];
  scalars: { commitWeight: string; beta?: string; epsilon?: string };
}

export interface ModelTrace {
  x: string;
  enc: DenseTrace[];
  dec: DenseTrace[];
  /** int64 [N, 1] per level. */
  codes: string[];
  /** r_l, the input of level l. */
  levelInputs: string[];
  /** r_{l+1}, the residual after level l. */
  residuals: string[];
  /** Decoder output [N, D]. */
  y: string;
}

/** Declares the parameter and scalar inputs; returns the context the fragments below use. */
export function createContext(g: GraphBuilder, shape: RqVaeShape, dtype: FloatType, options: QuantizerOptions,
  params: 'all' | 'no-scales' = 'no-scales'): GraphContext {
  const layout = paramLayout(shape);
  const inputs: string[] = [];
  for (const spec of layout.specs) {
    if (spec.kind === 'scale' && params === 'no-scales') continue;
    inputs.push(g.input(spec.name, dtype, spec.dims));
  }
  const scalarInput = (name: string) => {
    inputs.push(g.input(name, dtype, []));
    return name;
  };
  const scalars: GraphContext['scalars'] = { commitWeight: scalarInput('commit_weight') };
  if (options.commitment === 'classic') scalars.beta = scalarInput('beta');
  if (options.assignment === 'sinkhorn') scalars.epsilon = scalarInput('sinkhorn_eps');
  return { g, layout, shape, dtype, options, inputs, scalars };
}

/** Encoder, residual quantisation and decoder for the batch `x`. */
export function appendForward(ctx: GraphContext, x: string): ModelTrace {
  const { g, layout, shape, options } = ctx;
  const enc = appendMlpForward(g, x, layout.encoder);
  let r = enc.output;
  let s = '';
  const codes: string[] = [];
  const levelInputs: string[] = [];
  const residuals: string[] = [];
  const axis1 = g.int64([1]);
  shape.codebookSizes.forEach((k, l) => {
    const c = layout.codebooks[l]!;
    const code = options.assignment === 'sinkhorn'
      ? appendSinkhornLabels(g, r, c, {
        dtype: ctx.dtype, iterations: options.sinkhornIterations, epsilon: ctx.scalars.epsilon!, codebookSize: k,
      })
      : appendArgminLabels(g, r, c);
    const q = g.op('Gather', [c, g.op('Squeeze', [code, axis1])], { axis: 0 });
    levelInputs.push(r);
    codes.push(code);
    r = g.op('Sub', [r, q]);
    residuals.push(r);
    s = s === '' ? q : g.op('Add', [s, q]);
  });
  const dec = appendMlpForward(g, s, layout.decoder);
  return { x, enc: enc.traces, dec: dec.traces, codes, levelInputs, residuals, y: dec.output };
}

/**
 * The commitment term (unweighted value) and its gradients: with respect to z, and per level with respect to
 * q_l (absent with EMA codebooks). `invCount` is 1 / (N H).
 */
export function appendCommitment(ctx: GraphContext, trace: ModelTrace, invCount: string):
  { loss: string; gradZ: string; gradQ: string[] } {
  const { g, dtype, options } = ctx;
  const levels = trace.residuals.length;
  const ema = options.codebookUpdate === 'ema';
  const c = (v: number) => scalar(g, dtype, v);
  let ssq = '';
  let sumR = '';
  for (const r of trace.residuals) {
    const term = g.op('ReduceSumSquare', [r], { keepdims: 0 });
    ssq = ssq === '' ? term : g.op('Add', [ssq, term]);
    sumR = sumR === '' ? r : g.op('Add', [sumR, r]);
  }
  const mse = g.op('Mul', [ssq, invCount]); // sum_l mean(r_{l+1}^2)
  if (options.commitment === 'forge') {
    const loss = g.op('Mul', [mse, c((ema ? 0.5 : 1) / levels)]);
    const scale = g.op('Mul', [invCount, c(1 / levels)]);
    const gradZ = g.op('Mul', [sumR, scale]);
    if (ema) return { loss, gradZ, gradQ: [] };
    // d/dq_j = -scale * sum_{l >= j} r_{l+1}: suffix sums from the last level down.
    const gradQ: string[] = new Array(levels);
    let suffix = '';
    for (let j = levels - 1; j >= 0; j--) {
      suffix = suffix === '' ? trace.residuals[j]! : g.op('Add', [suffix, trace.residuals[j]!]);
      gradQ[j] = g.op('Mul', [suffix, g.op('Neg', [scale])]);
    }
    return { loss, gradZ, gradQ };
  }
  const beta = ctx.scalars.beta!;
  const loss = g.op('Mul', [mse, ema ? beta : g.op('Add', [beta, c(1)])]);
  const gradZ = g.op('Mul', [sumR, g.op('Mul', [invCount, g.op('Mul', [beta, c(2)])])]);
  if (ema) return { loss, gradZ, gradQ: [] };
  const minusTwo = g.op('Mul', [invCount, c(-2)]);
  return { loss, gradZ, gradQ: trace.residuals.map((r) => g.op('Mul', [r, minusTwo])) };
}

/**
 * Back-propagates `gradY` (d loss / d decoder output) and the weighted commitment gradients; returns the gradient
 * value of every trained parameter by name. Gradients of the same parameter from several traces are summed by
 * the caller.
 */
export function appendBackward(ctx: GraphContext, trace: ModelTrace, gradY: string,
  commit: { gradZ: string; gradQ: string[] }): Map<string, string> {
  const { g, layout, shape } = ctx;
  const grads = new Map<string, string>();
  const dec = appendMlpBackward(g, gradY, layout.decoder, trace.dec, { inputGrad: true });
  dec.grads.forEach((gr, i) => {
    grads.set(layout.decoder[i]!.weight, gr.weight);
    grads.set(layout.decoder[i]!.bias, gr.bias);
  });
  const w = ctx.scalars.commitWeight;
  const gradZ = g.op('Add', [dec.inputGrad!, g.op('Mul', [commit.gradZ, w])]); // straight-through + commitment
  const trainedEncoder = layout.encoder.slice(layout.frozenEncoderLayers);
  const enc = appendMlpBackward(g, gradZ, trainedEncoder, trace.enc.slice(layout.frozenEncoderLayers));
  enc.grads.forEach((gr, i) => {
    grads.set(trainedEncoder[i]!.weight, gr.weight);
    grads.set(trainedEncoder[i]!.bias, gr.bias);
  });
  commit.gradQ.forEach((gq, l) => {
    const k = shape.codebookSizes[l]!;
    const base = zeros(g, [k, shape.latentDim], ctx.dtype);
    grads.set(layout.codebooks[l]!, g.op('ScatterND', [base, trace.codes[l]!, g.op('Mul', [gq, w])], { reduction: 'add' }));
  });
  return grads;
}

/** Per-level EMA statistics and level inputs as graph outputs (see module doc). */
export function appendLevelOutputs(ctx: GraphContext, trace: ModelTrace, emaSums: boolean, levelInputs: boolean): void {
  const { g, shape, dtype } = ctx;
  shape.codebookSizes.forEach((k, l) => {
    if (levelInputs) g.output(trace.levelInputs[l]!, dtype, ['N', shape.latentDim], `level_input_${l}`);
    if (emaSums) {
      const sums = g.op('ScatterND', [zeros(g, [k, shape.latentDim], dtype), trace.codes[l]!, trace.levelInputs[l]!],
        { reduction: 'add' });
      g.output(sums, dtype, [k, shape.latentDim], `ema_sums_${l}`);
    }
  });
}

/** MSE(y, x) over all N x D elements (`invND` = 1 / (N D)) and its gradient with respect to y. */
export function appendReconstruction(g: GraphBuilder, dtype: FloatType, y: string, x: string, invND: string): { loss: string; gradY: string } {
  const err = g.op('Sub', [y, x]);
  return {
    loss: g.op('Mul', [g.op('ReduceSumSquare', [err], { keepdims: 0 }), invND]),
    gradY: g.op('Mul', [err, g.op('Mul', [invND, scalar(g, dtype, 2)])]),
  };
}

/** The reconstruction training step (see module doc). */
export function buildStepGraph(options: StepGraphOptions): StepGraph {
  const dtype = options.dtype ?? 'float32';
  const { shape } = options;
  const g = new GraphBuilder('rqvae_train_step');
  const x = g.input('x', dtype, ['N', shape.inputDim]);
  const target = options.denoise === true ? g.input('target', dtype, ['N', shape.inputDim]) : x;
  const ctx = createContext(g, shape, dtype, options);
  const trace = appendForward(ctx, x);
  const n = rowCount(g, x, dtype);
  const invND = g.op('Reciprocal', [g.op('Mul', [n, scalar(g, dtype, shape.inputDim)])]);
  const invNH = g.op('Reciprocal', [g.op('Mul', [n, scalar(g, dtype, shape.latentDim)])]);
  const recon = appendReconstruction(g, dtype, trace.y, target, invND);
  const commit = appendCommitment(ctx, trace, invNH);
  const grads = appendBackward(ctx, trace, recon.gradY, commit);

  g.output(recon.loss, dtype, [], 'loss_recon');
  g.output(commit.loss, dtype, [], 'loss_commit');
  g.output(trace.codes.length === 1 ? trace.codes[0]! : g.op('Concat', trace.codes, { axis: 1 }), 'int64',
    ['N', shape.codebookSizes.length], 'codes');
  const trained: string[] = [];
  for (const spec of ctx.layout.specs) {
    const grad = grads.get(spec.name);
    if (grad === undefined) continue;
    trained.push(spec.name);
    g.output(grad, dtype, spec.dims, `grad_${spec.name}`);
  }
  const ema = options.codebookUpdate === 'ema';
  appendLevelOutputs(ctx, trace, ema, ema || options.levelInputs === true);
  return {
    bytes: g.serialize({ opset: 17, docString: `RQ-VAE training step, ${JSON.stringify({ ...options, dtype })}` }),
    inputs: ['x', ...(options.denoise === true ? ['target'] : []), ...ctx.inputs],
    trained,
  };
}
