/**
 * FORGE's contrastive step (Eq. 2; al_sid `RQVAE_EMBED_CLIP.forward_clip` + `CLIPLoss`) as one ONNX graph with
 * hand-derived gradients. A batch holds P co-occurring pairs: raw inputs xa, xb [P, D]. Both go through the
 * RQ-VAE (rqvae-graphs.ts: encoder, residual quantisation with the training assignment, straight-through
 * decoder) giving reconstructions ya, yb, L2-normalised to a, b (F.normalize, eps 1e-12). With learnable logit
 * scales t_k (temperature 1 / exp(t_k), initialised at 0.07) and CE(M) = mean_i (logsumexp_j M_ij - M_ii), the
 * cross entropy over in-batch negatives with the diagonal as the positives:
 *   self = ( CE(e^t_self a b^T) + CE(e^t_self b a^T) ) / 2
 *   ori  = ( CE(e^t_ori  a xb^T) + CE(e^t_ori  b xa^T) ) / 2      (raw inputs, not normalised, as in FORGE)
 *   cl   = ( CE(e^t_cl   a xa^T) + CE(e^t_cl   b xb^T) ) / 2
 *   loss = contrastive_weight * (ori + self + cl) / 3 + commit_weight * (commit_a + commit_b) / 2
 *          + recon_weight * (mse(ya, xa) + mse(yb, xb)) / 2
 * FORGE: contrastive_weight 1, recon_weight 0 (its contrastive batches have no reconstruction term; with few items
 * and many pairs the decoder's output norm then drifts, which recon_weight > 0 prevents).
 * `loss_contrastive` and `loss_recon` are reported unweighted.
 * Gradients: for M = e^t U V^T under CE on rows, G = (softmax_rows(M) - I) / P scaled by the term's weight;
 * dU = e^t G V, dV = e^t G^T U, dt = sum(G * M). CE(b a^T) = CE on the columns of a b^T: softmax over axis 0.
 * Normalisation backward: dy = (da - a (a . da)) / max(||y||, eps).
 * Outputs: `loss_contrastive`, `loss_self`, `loss_ori`, `loss_cl`, `loss_commit`, `loss_recon` (means of the two items'),
 * `codes_a`, `codes_b` int64 [P, L] and `grad_<param>` for every trained parameter, the logit scales included.
 */
import { GraphBuilder } from '../numeric/onnx-builder.ts';
import { rowCount, scalar, type FloatType } from '../numeric/dense-graph.ts';
import {
  appendBackward, appendCommitment, appendForward, appendReconstruction, createContext, type QuantizerOptions,
  type StepGraph,
} from './rqvae-graphs.ts';
import type { RqVaeShape } from './rqvae-model.ts';

export interface ContrastiveGraphOptions extends QuantizerOptions {
  shape: RqVaeShape;
  dtype?: FloatType;
}

export function buildContrastiveGraph(options: ContrastiveGraphOptions): StepGraph {
  const dtype = options.dtype ?? 'float32';
  const { shape } = options;
  const d = shape.inputDim;
  const g = new GraphBuilder('rqvae_contrastive_step');
  const xa = g.input('xa', dtype, ['P', d]);
  const xb = g.input('xb', dtype, ['P', d]);
  const contrastiveWeight = g.input('contrastive_weight', dtype, []);
  const reconWeight = g.input('recon_weight', dtype, []);
  const ctx = createContext(g, shape, dtype, options, 'all');
  const c = (v: number) => scalar(g, dtype, v);
  const traceA = appendForward(ctx, xa);
  const traceB = appendForward(ctx, xb);
  const p = rowCount(g, xa, dtype);
  const invP = g.op('Reciprocal', [p]);

  const normalise = (y: string) => {
    const norm = g.op('Max', [g.op('Sqrt', [g.op('ReduceSumSquare', [y], { axes: [1], keepdims: 1 })]), c(1e-12)]);
    return { unit: g.op('Div', [y, norm]), norm };
  };
  const na = normalise(traceA.y);
  const nb = normalise(traceB.y);
  const [tSelf, tOri, tCl] = ctx.layout.scales as [string, string, string];
  const sSelf = g.op('Exp', [tSelf]);
  const sOri = g.op('Exp', [tOri]);
  const sCl = g.op('Exp', [tCl]);

  const gradA: string[] = [];
  const gradB: string[] = [];
  const gradScale = new Map<string, string[]>([[tSelf, []], [tOri, []], [tCl, []]]);
  // Each CE enters with 1/2 (pair average) * 1/3 (mean of the three losses).
  const weight = g.op('Mul', [c(1 / 6), contrastiveWeight]);
  const logits = (scale: string, u: string, v: string) => g.op('Mul', [g.op('Gemm', [u, v], { transB: 1 }), scale]);
  /** CE over rows (axis 1) or columns (axis 0) of m, and its weighted gradient with respect to m. */
  const crossEntropy = (m: string, axis: 0 | 1) => {
    const eye = g.op('EyeLike', [m]);
    const loss = g.op('Mul', [g.op('ReduceSum', [g.op('Mul', [g.op('LogSoftmax', [m], { axis }), eye])], { keepdims: 0 }),
      g.op('Neg', [invP])]);
    const grad = g.op('Mul', [g.op('Sub', [g.op('Softmax', [m], { axis }), eye]), g.op('Mul', [invP, weight])]);
    return { loss, grad };
  };
  /** Accumulates dU, dV and dt of m = e^t U V^T for the gradient gm. */
  const backLogits = (gm: string, m: string, scale: string, t: string, u: string, v: string,
    toU: string[] | null, toV: string[] | null) => {
    if (toU !== null) toU.push(g.op('Mul', [g.op('MatMul', [gm, v]), scale]));
    if (toV !== null) toV.push(g.op('Mul', [g.op('Gemm', [gm, u], { transA: 1 }), scale]));
    gradScale.get(t)!.push(g.op('ReduceSum', [g.op('Mul', [gm, m])], { keepdims: 0 }));
  };

  const mSelf = logits(sSelf, na.unit, nb.unit);
  const selfRows = crossEntropy(mSelf, 1);
  const selfCols = crossEntropy(mSelf, 0);
  const gSelf = g.op('Add', [selfRows.grad, selfCols.grad]);
  backLogits(gSelf, mSelf, sSelf, tSelf, na.unit, nb.unit, gradA, gradB);
  const half = (a: string, b: string) => g.op('Mul', [g.op('Add', [a, b]), c(0.5)]);
  const lossSelf = half(selfRows.loss, selfCols.loss);

  const pairTerm = (scale: string, t: string, va: string, vb: string) => {
    const ma = logits(scale, na.unit, va);
    const mb = logits(scale, nb.unit, vb);
    const ca = crossEntropy(ma, 1);
    const cb = crossEntropy(mb, 1);
    backLogits(ca.grad, ma, scale, t, na.unit, va, gradA, null);
    backLogits(cb.grad, mb, scale, t, nb.unit, vb, gradB, null);
    return half(ca.loss, cb.loss);
  };
  const lossOri = pairTerm(sOri, tOri, xb, xa);
  const lossCl = pairTerm(sCl, tCl, xa, xb);
  const clip = g.op('Mul', [g.op('Add', [g.op('Add', [lossOri, lossSelf]), lossCl]), c(1 / 3)]);

  const sum = (values: string[]) => values.reduce((acc, v) => g.op('Add', [acc, v]));
  const normBackward = (gu: string, n: { unit: string; norm: string }) => {
    const radial = g.op('Mul', [n.unit, g.op('ReduceSum', [g.op('Mul', [n.unit, gu]), g.int64([1])], { keepdims: 1 })]);
    return g.op('Div', [g.op('Sub', [gu, radial]), n.norm]);
  };
  const invNH = g.op('Reciprocal', [g.op('Mul', [p, c(shape.latentDim)])]);
  const halfCommit = (trace: typeof traceA) => {
    const cm = appendCommitment(ctx, trace, invNH);
    return { loss: cm.loss, gradZ: g.op('Mul', [cm.gradZ, c(0.5)]), gradQ: cm.gradQ.map((q) => g.op('Mul', [q, c(0.5)])) };
  };
  const commitA = halfCommit(traceA);
  const commitB = halfCommit(traceB);
  const invND = g.op('Reciprocal', [g.op('Mul', [p, c(d)])]);
  const reconA = appendReconstruction(g, dtype, traceA.y, xa, invND);
  const reconB = appendReconstruction(g, dtype, traceB.y, xb, invND);
  const halfReconWeight = g.op('Mul', [reconWeight, c(0.5)]);
  const gradY = (gu: string, n: { unit: string; norm: string }, recon: { gradY: string }) =>
    g.op('Add', [normBackward(gu, n), g.op('Mul', [recon.gradY, halfReconWeight])]);
  const gradsA = appendBackward(ctx, traceA, gradY(sum(gradA), na, reconA), commitA);
  const gradsB = appendBackward(ctx, traceB, gradY(sum(gradB), nb, reconB), commitB);

  g.output(clip, dtype, [], 'loss_contrastive');
  g.output(lossSelf, dtype, [], 'loss_self');
  g.output(lossOri, dtype, [], 'loss_ori');
  g.output(lossCl, dtype, [], 'loss_cl');
  g.output(half(commitA.loss, commitB.loss), dtype, [], 'loss_commit');
  g.output(half(reconA.loss, reconB.loss), dtype, [], 'loss_recon');
  const levels = shape.codebookSizes.length;
  const concat = (codes: string[]) => (codes.length === 1 ? codes[0]! : g.op('Concat', codes, { axis: 1 }));
  g.output(concat(traceA.codes), 'int64', ['P', levels], 'codes_a');
  g.output(concat(traceB.codes), 'int64', ['P', levels], 'codes_b');
  const trained: string[] = [];
  for (const spec of ctx.layout.specs) {
    const parts = spec.kind === 'scale' ? gradScale.get(spec.name)! : [gradsA.get(spec.name), gradsB.get(spec.name)]
      .filter((v): v is string => v !== undefined);
    if (parts.length === 0) continue;
    trained.push(spec.name);
    g.output(sum(parts), dtype, spec.dims, `grad_${spec.name}`);
  }
  return {
    bytes: g.serialize({ opset: 17, docString: `RQ-VAE contrastive step, ${JSON.stringify({ ...options, dtype })}` }),
    inputs: ['xa', 'xb', 'contrastive_weight', 'recon_weight', ...ctx.inputs],
    trained,
  };
}
