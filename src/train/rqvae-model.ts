/**
 * The RQ-VAE / VQ-VAE model: its shape, the layout of every parameter in ONE flat Float32Array (views, no
 * copies), and the seeded initialisation.
 *
 * Encoder: dense layers inputDim -> hidden[0] -> ... -> latentDim, ReLU after every layer but the last. With an
 * input projection of width P (`inputProjection`), a frozen linear layer inputDim -> P comes first (`proj_w`,
 * `proj_b`: the trainer sets it to the training rows' top P principal components and never updates it), so the
 * MLP sees only the subspace the training rows span; the decoder still reconstructs all inputDim values.
 * Decoder: the mirror, latentDim -> ... reversed hidden ... -> inputDim, no output activation.
 * Codebooks: one [K_l, latentDim] matrix per level. Three InfoNCE logit scales (FORGE's self / ori / cl) follow;
 * they are used only by the contrastive step and initialised to log(1 / 0.07).
 * Weights are stored [in, out] row-major (x W + b, no transposes in the graphs); PyTorch's nn.Linear stores
 * [out, in], so W here is its weight transposed.
 *
 * Initialisation (seeded, deterministic): PyTorch nn.Linear's default, i.e. W and b uniform in
 * [-1/sqrt(fan_in), 1/sqrt(fan_in)] (kaiming_uniform with a = sqrt(5)); codebooks are overwritten by the trainer
 * (RQ-KMeans on the initial latents) and otherwise uniform in the same range as FORGE's kaiming init of
 * nn.Embedding ([-sqrt(6 / latentDim), sqrt(6 / latentDim)]).
 */
import type { DenseLayer } from '../numeric/dense-graph.ts';
import { seededUniform } from '../random.ts';

export interface RqVaeShape {
  inputDim: number;
  /** Hidden widths of the encoder (the decoder uses them reversed); FORGE: [256, 256]. */
  hidden: number[];
  latentDim: number;
  /** Width of the frozen input projection (absent or 0: none). */
  inputProjection?: number;
  /** K per level; a single level is a VQ-VAE. */
  codebookSizes: number[];
}

export type ParamKind = 'weight' | 'bias' | 'codebook' | 'scale';

export interface ParamSpec {
  /** Also the graph input name; the gradient output is `grad_<name>`. */
  name: string;
  kind: ParamKind;
  dims: number[];
  offset: number;
  size: number;
  /** Weight decay applies to trained matrices (weights and codebooks) only. */
  decay: boolean;
  /** Set once before training and never updated (the input projection). */
  frozen: boolean;
}

export interface ParamLayout {
  specs: ParamSpec[];
  byName: Map<string, ParamSpec>;
  total: number;
  /** The encoder's layers, the frozen input projection (if any) first. */
  encoder: DenseLayer[];
  /** How many leading encoder layers are frozen (0 or 1); they get no gradient. */
  frozenEncoderLayers: number;
  decoder: DenseLayer[];
  /** Names of the codebook params, one per level. */
  codebooks: string[];
  /** Names of the logit scales (self, ori, cl). */
  scales: string[];
}

export const LOGIT_SCALE_NAMES = ['logit_scale_self', 'logit_scale_ori', 'logit_scale_cl'] as const;
export const INITIAL_TEMPERATURE = 0.07;

export function checkShape(shape: RqVaeShape): void {
  const posInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  };
  posInt(shape.inputDim, 'inputDim');
  posInt(shape.latentDim, 'latentDim');
  if (shape.inputProjection !== undefined && shape.inputProjection !== 0) {
    posInt(shape.inputProjection, 'inputProjection');
    if (shape.inputProjection > shape.inputDim) {
      throw new RangeError(`inputProjection (${shape.inputProjection}) exceeds inputDim (${shape.inputDim})`);
    }
  }
  shape.hidden.forEach((h, i) => posInt(h, `hidden[${i}]`));
  if (shape.codebookSizes.length < 1) throw new RangeError('at least one codebook level is required');
  shape.codebookSizes.forEach((k, i) => posInt(k, `codebookSizes[${i}]`));
}

/** Parameter names, dims and offsets for a shape; the order is the checkpoint order. */
export function paramLayout(shape: RqVaeShape): ParamLayout {
  checkShape(shape);
  const specs: ParamSpec[] = [];
  let offset = 0;
  const add = (name: string, kind: ParamKind, dims: number[], frozen = false) => {
    const size = dims.reduce((p, d) => p * d, 1);
    specs.push({ name, kind, dims, offset, size, decay: !frozen && (kind === 'weight' || kind === 'codebook'), frozen });
    offset += size;
  };
  const projection = shape.inputProjection ?? 0;
  const frozen: DenseLayer[] = [];
  if (projection > 0) {
    add('proj_w', 'weight', [shape.inputDim, projection], true);
    add('proj_b', 'bias', [projection], true);
    frozen.push({ weight: 'proj_w', bias: 'proj_b', inDim: shape.inputDim, outDim: projection, relu: false });
  }
  const dense = (prefix: string, widths: number[]): DenseLayer[] => widths.slice(1).map((out, i) => {
    const inDim = widths[i]!;
    add(`${prefix}${i}_w`, 'weight', [inDim, out]);
    add(`${prefix}${i}_b`, 'bias', [out]);
    return { weight: `${prefix}${i}_w`, bias: `${prefix}${i}_b`, inDim, outDim: out, relu: i < widths.length - 2 };
  });
  const encoder = [...frozen, ...dense('enc', [projection > 0 ? projection : shape.inputDim, ...shape.hidden, shape.latentDim])];
  const decoder = dense('dec', [shape.latentDim, ...[...shape.hidden].reverse(), shape.inputDim]);
  const codebooks = shape.codebookSizes.map((k, l) => {
    add(`codebook_${l}`, 'codebook', [k, shape.latentDim]);
    return `codebook_${l}`;
  });
  for (const name of LOGIT_SCALE_NAMES) add(name, 'scale', []);
  return {
    specs, byName: new Map(specs.map((s) => [s.name, s])), total: offset, encoder, frozenEncoderLayers: frozen.length, decoder, codebooks,
    scales: [...LOGIT_SCALE_NAMES],
  };
}

/** The view of one parameter inside the flat array. */
export function paramView(flat: Float32Array, spec: ParamSpec): Float32Array {
  return flat.subarray(spec.offset, spec.offset + spec.size);
}

/** Uniforms in [0, 1) for the trainer's draws (src/random.ts's generator, salted so seed 0 is not its seed 0). */
export function seededRandom(seed: number): () => number {
  return seededUniform(seed ^ 0x9e3779b9);
}

/** A Fisher-Yates permutation of 0..n-1 drawn from seededRandom(seed). */
export function seededPermutation(n: number, seed: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** A freshly initialised flat parameter array (see module doc). */
export function initParams(layout: ParamLayout, seed: number): Float32Array {
  const flat = new Float32Array(layout.total);
  const rand = seededRandom(seed);
  for (const spec of layout.specs) {
    const view = paramView(flat, spec);
    let bound: number;
    if (spec.kind === 'scale') {
      view.fill(Math.log(1 / INITIAL_TEMPERATURE));
      continue;
    } else if (spec.kind === 'codebook') {
      bound = Math.sqrt(6 / spec.dims[1]!);
    } else {
      // Bias of a layer: fan_in is the row count of its weight, the spec just before it.
      const fanIn = spec.kind === 'weight' ? spec.dims[0]! : layout.specs[layout.specs.indexOf(spec) - 1]!.dims[0]!;
      bound = 1 / Math.sqrt(fanIn);
    }
    for (let i = 0; i < view.length; i++) view[i] = (2 * rand() - 1) * bound;
  }
  return flat;
}
