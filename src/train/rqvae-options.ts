/**
 * Options of the RQ-VAE / VQ-VAE trainer, their defaults and their validation.
 *
 * Defaults follow FORGE's al_sid recipe (configs/rqvae_i2v.yml) for rqvae: MLP 512-256-256-64, batch 2048,
 * AdamW lr 2e-3 -> 1e-7 with 40/150 of the epochs as warm-up, weight decay 1e-4, Sinkhorn assignment in training
 * (eps 10, 5 rounds), FORGE's per-level commitment, gradient-trained codebooks. The vqvae defaults are the classic
 * VQ-VAE: one codebook of 4096, argmin assignment, beta = 0.25, EMA codebooks (decay 0.99) with dead-code restart.
 * Every choice is overridable.
 */
import { SidxError } from '../errors.ts';
import type { Assignment, CodebookUpdate, CommitmentForm } from './rqvae-graphs.ts';
import type { RqVaeShape } from './rqvae-model.ts';

export type VaeMethod = 'rqvae' | 'vqvae';
export type Normalize = 'l2' | 'none';

export interface RqVaeOptions {
  method: VaeMethod;
  /** K per level (vqvae: exactly one). */
  codebookSizes: number[];
  hidden?: number[];
  latentDim?: number;
  /**
   * Input projection: the encoder's first layer is the training rows' top P principal components (FAISS PCA,
   * frozen), so its MLP sees only the subspace the training rows span and noise outside it cannot move a code.
   * 0 (default): none.
   */
  inputProjection?: number;
  normalize?: Normalize;
  /**
   * Reconstruction (optimiser) steps of the run: the schedule's length. Converted to whole epochs of the batch
   * size, rounded up (pair steps of contrastive runs come on top). Default DEFAULT_STEPS; ignored when `epochs` is given.
   */
  steps?: number;
  epochs?: number;
  /** Default: defaultBatchSize(rows). */
  batchSize?: number;
  seed?: number;
  lr?: number;
  minLr?: number;
  warmupEpochs?: number;
  weightDecay?: number;
  /** Rate at which the first trained encoder layer (square) is drawn towards the identity after each step; 0: off. */
  identityPull?: number;
  assignment?: Assignment;
  sinkhornEpsilon?: number;
  sinkhornIterations?: number;
  commitment?: CommitmentForm;
  beta?: number;
  commitWeight?: number;
  codebookUpdate?: CodebookUpdate;
  emaDecay?: number;
  /** Replace codes whose EMA usage count falls below `deadThreshold` by random batch latents. */
  restartDead?: boolean;
  /**
   * Usage EMA (hits per step) under which a code is dead. 'auto' (default): min(1, 0.5 batch / K), i.e. FORGE's
   * "< 1" when batches are at least twice the codebook, else half the uniform rate: with batch < K the average code
   * gets fewer than one hit per step, and "< 1" would restart nearly every code at every step.
   */
  deadThreshold?: number | 'auto';
  /** Codebook initialisation: RQ-KMeans on the initial encoder's latents, or FORGE's uniform init. */
  init?: 'rqkmeans' | 'random';
  /** Rows for the k-means initialisation (default: all). */
  initSample?: number;
  initIterations?: number;
  /**
   * Contrastive pair batches per epoch: 'all' (FORGE: every full batch of the pairs) or at most N, a different
   * seeded draw each epoch. Caps the pair share of the steps where pairs far outnumber the items.
   */
  pairBatches?: number | 'all';
  /** Weight of the InfoNCE terms in a contrastive step (FORGE: 1). */
  contrastiveWeight?: number;
  /** Weight of the pair items' reconstruction MSE in a contrastive step (FORGE: 0, none). */
  pairReconWeight?: number;
  /**
   * Contrastive steps run only in epochs [pairFromEpoch, pairUntilEpoch) (0-based; defaults 0 and epochs: all). The
   * pair steps of the other epochs are skipped, not replaced, so the reconstruction schedule is the same.
   */
  pairFromEpoch?: number;
  /**
   * Pair steps feed both items of every pair plus fresh isotropic Gaussian noise of expected norm u x pairNoise x
   * ||row|| (u uniform in [0, 1] per row and step, as inputNoise). 0 (default): off.
   */
  pairNoise?: number;
  pairUntilEpoch?: number;
  /**
   * Self pairs: `selfPairs` pairs (i, i) per row of the pair vectors join the contrastive pairs. Their two sides get
   * independent noise of expected norm u x selfPairNoise x ||row|| (default: pairNoise), so the InfoNCE terms ask for
   * codes that noise of that size does not move (noisy items of one neighbourhood keep a SID, or differ in one code).
   * 0 (default): none.
   */
  selfPairs?: number;
  selfPairNoise?: number;
  /**
   * Collision-aware last level: after training, move last-level codewords onto items of SIDs holding more than
   * this many items until none does (src/train/collision-split.ts). 0 (default): off.
   */
  maxItemsPerSid?: number;
  /**
   * Denoising (src/train/input-noise.ts): every reconstruction step feeds each batch row plus isotropic Gaussian
   * noise of expected norm u x inputNoise x ||row|| (u uniform in [0, 1], drawn per row and step; re-normalised when
   * normalize = 'l2') and reconstructs the clean row. 0 (default): off.
   */
  inputNoise?: number;
  /** Share of reconstruction rows replaced by means of 2-5 input rows (src/train/input-noise.ts mixRows). 0 (default): off. */
  inputMix?: number;
  /**
   * Augmentation (src/train/input-noise.ts noisyCopies): train on the rows plus this many noisy copies of each, noise
   * of expected norm `augmentNoise` x ||row||, reconstructed as fed; batches and steps count the copies. 0: off.
   */
  augmentCopies?: number;
  /** Default 0.5. */
  augmentNoise?: number;
  /** ORT intra-op threads (default: ORT's choice, all cores). */
  threads?: number;
  /**
   * Evaluate (inference codes on all rows, SID metrics) every N epochs and after the last; 0 = last only.
   * Default: every tenth of the run.
   */
  evalEvery?: number;
  /** Checkpoint file written after every epoch. */
  checkpoint?: string;
  /** Checkpoint file to resume from. */
  resume?: string;
}

/** Resolved: `batchSize` is the batch actually used (at most the rows), `steps` = epochs x full batches per epoch. */
export type ResolvedOptions = Required<Omit<RqVaeOptions, 'checkpoint' | 'resume' | 'initSample' | 'threads'>>
  & Pick<RqVaeOptions, 'checkpoint' | 'resume' | 'initSample' | 'threads'>;

export const FORGE_HIDDEN = [256, 256];
export const FORGE_LATENT_DIM = 64;
export const DEFAULT_STEPS = 1000;

/**
 * The default batch: rows / 8 within 64..2048 (FORGE's 2048 from 16,384 rows up), so that a small catalog still
 * gets 8 steps per epoch; never more than the rows.
 */
export function defaultBatchSize(rows: number): number {
  return Math.min(rows, Math.max(64, Math.min(2048, Math.round(rows / 8))));
}

/** Full batches per epoch (the remainder of a permutation is left out, like drop_last). */
export function stepsPerEpoch(rows: number, batch: number): number {
  return Math.max(1, Math.floor(rows / batch));
}

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

/**
 * Every option with its default for a data set of `rows` rows: the batch size is capped at the rows, and the
 * epochs are the ones `steps` (or its default) takes at that batch size unless `epochs` is given.
 */
export function resolveOptions(o: RqVaeOptions, rows: number): ResolvedOptions {
  const vq = o.method === 'vqvae';
  if (o.steps !== undefined && o.epochs !== undefined) throw invalid('give steps or epochs, not both', 'steps');
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps >= 1 && o.steps <= 1e9)) {
    throw invalid(`steps must be an integer in 1..1000000000, got ${o.steps}`, 'steps');
  }
  const batchSize = o.batchSize === undefined ? defaultBatchSize(rows) : Math.min(o.batchSize, rows);
  const perEpoch = stepsPerEpoch(rows, batchSize);
  const epochs = o.epochs ?? Math.ceil((o.steps ?? DEFAULT_STEPS) / perEpoch);
  const r: ResolvedOptions = {
    method: o.method,
    codebookSizes: [...o.codebookSizes],
    hidden: [...(o.hidden ?? FORGE_HIDDEN)],
    latentDim: o.latentDim ?? FORGE_LATENT_DIM,
    inputProjection: o.inputProjection ?? 0,
    normalize: o.normalize ?? 'none',
    steps: epochs * perEpoch,
    epochs,
    batchSize,
    seed: o.seed ?? 0,
    lr: o.lr ?? 2e-3,
    minLr: o.minLr ?? 1e-7,
    warmupEpochs: o.warmupEpochs ?? Math.round((epochs * 40) / 150),
    weightDecay: o.weightDecay ?? 1e-4,
    identityPull: o.identityPull ?? 0,
    assignment: o.assignment ?? (vq ? 'argmin' : 'sinkhorn'),
    sinkhornEpsilon: o.sinkhornEpsilon ?? 10,
    sinkhornIterations: o.sinkhornIterations ?? 5,
    commitment: o.commitment ?? (vq ? 'classic' : 'forge'),
    beta: o.beta ?? 0.25,
    commitWeight: o.commitWeight ?? 1,
    codebookUpdate: o.codebookUpdate ?? (vq ? 'ema' : 'gradient'),
    emaDecay: o.emaDecay ?? 0.99,
    restartDead: o.restartDead ?? vq,
    deadThreshold: o.deadThreshold ?? 'auto',
    init: o.init ?? 'rqkmeans',
    initIterations: o.initIterations ?? 25,
    evalEvery: o.evalEvery ?? Math.max(1, Math.ceil(epochs / 10)),
    pairBatches: o.pairBatches ?? 'all',
    contrastiveWeight: o.contrastiveWeight ?? 1,
    pairReconWeight: o.pairReconWeight ?? 0,
    pairFromEpoch: o.pairFromEpoch ?? 0,
    pairNoise: o.pairNoise ?? 0,
    pairUntilEpoch: o.pairUntilEpoch ?? epochs,
    selfPairs: o.selfPairs ?? 0,
    selfPairNoise: o.selfPairNoise ?? o.pairNoise ?? 0,
    maxItemsPerSid: o.maxItemsPerSid ?? 0,
    inputNoise: o.inputNoise ?? 0,
    inputMix: o.inputMix ?? 0,
    augmentCopies: o.augmentCopies ?? 0,
    augmentNoise: o.augmentNoise ?? 0.5,
    ...(o.initSample === undefined ? {} : { initSample: o.initSample }),
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    ...(o.checkpoint === undefined ? {} : { checkpoint: o.checkpoint }),
    ...(o.resume === undefined ? {} : { resume: o.resume }),
  };
  check(r);
  return r;
}

function check(r: ResolvedOptions): void {
  const posInt = (v: number, field: string, max = 2 ** 31 - 1) => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw invalid(`${field} must be an integer in 1..${max}, got ${v}`, field);
  };
  const nonNegInt = (v: number, field: string) => {
    if (!Number.isInteger(v) || v < 0) throw invalid(`${field} must be a non-negative integer, got ${v}`, field);
  };
  const positive = (v: number, field: string) => {
    if (!(v > 0) || !Number.isFinite(v)) throw invalid(`${field} must be a positive number, got ${v}`, field);
  };
  const nonNeg = (v: number, field: string) => {
    if (!(v >= 0) || !Number.isFinite(v)) throw invalid(`${field} must be a non-negative number, got ${v}`, field);
  };
  if (r.method !== 'rqvae' && r.method !== 'vqvae') throw invalid(`method must be rqvae or vqvae, got ${String(r.method)}`, 'method');
  if (r.codebookSizes.length < 1 || r.codebookSizes.length > 64) throw invalid('codebookSizes must list 1..64 levels', 'codebookSizes');
  if (r.method === 'vqvae' && r.codebookSizes.length !== 1) throw invalid('vqvae has exactly one codebook', 'codebookSizes');
  r.codebookSizes.forEach((k, l) => posInt(k, `codebookSizes[${l}]`, 65536));
  r.hidden.forEach((h, i) => posInt(h, `hidden[${i}]`, 65536));
  posInt(r.latentDim, 'latentDim', 65536);
  nonNegInt(r.inputProjection, 'inputProjection');
  if (r.normalize !== 'l2' && r.normalize !== 'none') throw invalid(`normalize must be l2 or none, got ${String(r.normalize)}`, 'normalize');
  posInt(r.epochs, 'epochs', 1_000_000);
  posInt(r.batchSize, 'batchSize');
  nonNegInt(r.seed, 'seed');
  if (r.seed > 2 ** 31 - 65) throw invalid(`seed must be at most ${2 ** 31 - 65}`, 'seed');
  positive(r.lr, 'lr');
  nonNeg(r.minLr, 'minLr');
  if (r.minLr > r.lr) throw invalid(`minLr (${r.minLr}) exceeds lr (${r.lr})`, 'minLr');
  nonNegInt(r.warmupEpochs, 'warmupEpochs');
  if (r.warmupEpochs > r.epochs) throw invalid(`warmupEpochs (${r.warmupEpochs}) exceeds epochs (${r.epochs})`, 'warmupEpochs');
  nonNeg(r.weightDecay, 'weightDecay');
  nonNeg(r.identityPull, 'identityPull');
  if (r.assignment !== 'sinkhorn' && r.assignment !== 'argmin') throw invalid(`assignment must be sinkhorn or argmin, got ${String(r.assignment)}`, 'assignment');
  positive(r.sinkhornEpsilon, 'sinkhornEpsilon');
  posInt(r.sinkhornIterations, 'sinkhornIterations', 1000);
  if (r.commitment !== 'forge' && r.commitment !== 'classic') throw invalid(`commitment must be forge or classic, got ${String(r.commitment)}`, 'commitment');
  nonNeg(r.beta, 'beta');
  nonNeg(r.commitWeight, 'commitWeight');
  if (r.codebookUpdate !== 'gradient' && r.codebookUpdate !== 'ema') throw invalid(`codebookUpdate must be gradient or ema, got ${String(r.codebookUpdate)}`, 'codebookUpdate');
  if (!(r.emaDecay > 0 && r.emaDecay < 1)) throw invalid(`emaDecay must be in (0, 1), got ${r.emaDecay}`, 'emaDecay');
  if (r.deadThreshold !== 'auto') nonNeg(r.deadThreshold, 'deadThreshold');
  if (r.init !== 'rqkmeans' && r.init !== 'random') throw invalid(`init must be rqkmeans or random, got ${String(r.init)}`, 'init');
  if (r.initSample !== undefined) posInt(r.initSample, 'initSample');
  posInt(r.initIterations, 'initIterations', 10_000);
  if (r.threads !== undefined) posInt(r.threads, 'threads', 1024);
  nonNegInt(r.evalEvery, 'evalEvery');
  if (r.pairBatches !== 'all') posInt(r.pairBatches, 'pairBatches');
  positive(r.contrastiveWeight, 'contrastiveWeight');
  nonNeg(r.pairReconWeight, 'pairReconWeight');
  nonNegInt(r.pairFromEpoch, 'pairFromEpoch');
  nonNeg(r.pairNoise, 'pairNoise');
  nonNegInt(r.pairUntilEpoch, 'pairUntilEpoch');
  nonNegInt(r.selfPairs, 'selfPairs');
  nonNeg(r.selfPairNoise, 'selfPairNoise');
  if (r.pairFromEpoch >= r.pairUntilEpoch || r.pairUntilEpoch > r.epochs) {
    throw invalid(`pair epochs must satisfy pairFromEpoch (${r.pairFromEpoch}) < pairUntilEpoch (${r.pairUntilEpoch}) <= epochs (${r.epochs})`, 'pairFromEpoch');
  }
  nonNegInt(r.maxItemsPerSid, 'maxItemsPerSid');
  nonNeg(r.inputNoise, 'inputNoise');
  nonNegInt(r.augmentCopies, 'augmentCopies');
  nonNeg(r.augmentNoise, 'augmentNoise');
  if (!(r.inputMix >= 0 && r.inputMix <= 1)) throw invalid(`inputMix must be in [0, 1], got ${r.inputMix}`, 'inputMix');
}

/** The dead-code threshold of a level with K codes under batches of `batch` rows. */
export function deadThresholdOf(r: ResolvedOptions, batch: number, k: number): number {
  return r.deadThreshold === 'auto' ? Math.min(1, (0.5 * batch) / k) : r.deadThreshold;
}

export function shapeOf(r: ResolvedOptions, inputDim: number): RqVaeShape {
  if (r.inputProjection > inputDim) {
    throw invalid(`inputProjection (${r.inputProjection}) exceeds the input's ${inputDim} dimensions`, 'inputProjection');
  }
  const first = firstTrainedLayer(r, inputDim);
  if (r.identityPull > 0 && first.in !== first.out) {
    throw invalid(`identityPull needs a square first trained encoder layer; it is ${first.in} -> ${first.out}`, 'identityPull');
  }
  return {
    inputDim, hidden: r.hidden, latentDim: r.latentDim, codebookSizes: r.codebookSizes,
    ...(r.inputProjection > 0 ? { inputProjection: r.inputProjection } : {}),
  };
}

/** The widths of the encoder's first trained layer (after any frozen input projection), defaults as resolveOptions applies them. */
export function firstTrainedLayer(o: Pick<RqVaeOptions, 'inputProjection' | 'hidden' | 'latentDim'>, inputDim: number): { in: number; out: number } {
  return { in: o.inputProjection || inputDim, out: (o.hidden ?? FORGE_HIDDEN)[0] ?? o.latentDim ?? FORGE_LATENT_DIM };
}

/** The options that define the trained function; a checkpoint resumes only under the same ones. */
export function modelDefiningOptions(r: ResolvedOptions): Record<string, unknown> {
  const { method, codebookSizes, hidden, latentDim, normalize, assignment, commitment, codebookUpdate, inputProjection } = r;
  return {
    method, codebookSizes, hidden, latentDim, normalize, assignment, commitment, codebookUpdate,
    ...(inputProjection > 0 ? { inputProjection } : {}),
  };
}
