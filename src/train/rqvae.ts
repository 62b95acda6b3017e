/**
 * The RQ-VAE / VQ-VAE trainer (FORGE recipe; see rqvae-options.ts for the defaults and rqvae-graphs.ts for the
 * step graph). Forward and backward run as one ONNX Runtime graph per step; AdamW, the EMA codebooks and
 * dead-code restarts run on the flat Float32Array of parameters (O(parameters) per step).
 *
 * - Input projection (`inputProjection: P`): the encoder's frozen first layer is fitted to the rows' top P principal
 *   components (FAISS PCA) before anything else.
 * - Codebook init (`init: 'rqkmeans'`): RQ-KMeans (src/train/rqkmeans.ts, FAISS) on the latents of the seeded
 *   initial encoder; its codebooks become the model's.
 * - Epoch: the rows in a seeded permutation of (seed, epoch), cut into floor(n / batch) full batches (the
 *   remainder is left out of that epoch, like drop_last; every row is reached across epochs); with contrastive
 *   pairs, pair batches are interleaved evenly with the reconstruction batches.
 * - Learning rate per step from the fractional epoch (schedule.ts). Assignment in training is the configured one
 *   (FORGE: Sinkhorn); evaluation and the exported encoder use argmin.
 * - Evaluation every `evalEvery` epochs and after the last: inference-mode codes of all rows from the very encoder
 *   graph the bundle gets (so the exported encoder reproduces them), and SID quality metrics.
 * - Checkpoint after every epoch (parameters, optimiser moments and step counts, codebook EMA state, epoch);
 *   `resume` continues from the epoch after the saved one. Permutations and restart draws depend only on the seed,
 *   the epoch and the step, so a resumed run continues the same sequence.
 */
import { SidxError } from '../errors.ts';
import { paramLayout, paramView, initParams, seededPermutation } from './rqvae-model.ts';
import { buildStepGraph } from './rqvae-graphs.ts';
import { deadThresholdOf, resolveOptions, shapeOf, stepsPerEpoch, type RqVaeOptions, type ResolvedOptions } from './rqvae-options.ts';
import { AdamW } from './optimizer.ts';
import { learningRate } from './schedule.ts';
import { CodebookState } from './codebook-ema.ts';
import { createSession, decodeAll, encodeAll } from './rqvae-runtime.ts';
import { sidQualityMetrics, type SidMetrics } from './metrics.ts';
import { l2NormalizeRows } from './rqkmeans.ts';
import { fitInputProjection, initialiseCodebooks, loadTrainingState, saveTrainingState, type TrainingState } from './rqvae-state.ts';
import type { TrainedModel } from './rqvae-export-graphs.ts';
import { ContrastiveStep, type PairSet } from './rqvae-contrastive.ts';
import { splitCollisions } from './collision-split.ts';
import { addInputNoise, mixRows, noisyCopies } from './input-noise.ts';
import ort from 'onnxruntime-node';

export interface EpochSummary {
  epoch: number;
  /** Seconds of training steps alone (the benchmark figure), and of the whole epoch with evaluation. */
  trainSeconds: number;
  seconds: number;
  steps: number;
  recon: number;
  commit: number;
  /** Mean InfoNCE loss of the pair steps (contrastive only). */
  contrastive?: number;
  /** Codes restarted in the epoch, per level. */
  restarts: number[];
  /** Share of each level's codes that training batches used in the epoch. */
  trainUtilisation: number[];
  /** Inference-mode SID metrics of all rows, when evaluated. */
  metrics?: SidMetrics;
}

export type RqVaeProgress =
  | { kind: 'init'; message: string }
  /** After a fresh initialisation (not on resume): the initial parameters, e.g. for a baseline to start from. */
  | { kind: 'initialised'; params: Float32Array }
  | { kind: 'step'; epoch: number; epochs: number; step: number; steps: number; lr: number; recon: number; commit: number }
  | ({ kind: 'epoch'; epochs: number } & EpochSummary)
  | { kind: 'checkpoint'; epoch: number; path: string }
  /** After the collision-aware last level (maxItemsPerSid). */
  | { kind: 'split'; moved: number; rounds: number; maxItemsPerSid: number };

export interface TrainRqVaeOptions extends RqVaeOptions {
  /**
   * Start from these parameters (the flat layout of rqvae-model.ts) instead of initialising: no RQ-KMeans, codebook
   * usage starts uniform. For warm starts and for baselines that must start from identical weights.
   */
  initialParams?: Float32Array;
  /** Co-occurring item pairs for FORGE's contrastive loss (row indices into the data). */
  pairs?: PairSet;
  onProgress?: (event: RqVaeProgress) => void;
}

export interface RqVaeResult {
  model: TrainedModel;
  options: ResolvedOptions;
  n: number;
  /** The rows trained on (L2-normalised when normalize = 'l2'). */
  inputs: Float32Array;
  /** Inference-mode codes, n x L. */
  codes: Int32Array;
  /** Decoder output for `codes`, n x inputDim. */
  reconstructions: Float32Array;
  metrics: SidMetrics;
  history: EpochSummary[];
  /** First epoch trained in this run (> 0 after resume). */
  startEpoch: number;
}

/** A seeded permutation of 0..n-1 for (seed, epoch). */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return seededPermutation(n, Math.imul(seed + 1, 0x2545f491) ^ Math.imul(epoch + 1, 0x9e3779b1));
}

function gatherRows(src: Float32Array, dim: number, rows: Int32Array, start: number, count: number, dst: Float32Array): void {
  for (let i = 0; i < count; i++) {
    const r = rows[start + i]!;
    dst.set(src.subarray(r * dim, (r + 1) * dim), i * dim);
  }
}

export async function trainRqVae(data: Float32Array, dim: number, options: TrainRqVaeOptions): Promise<RqVaeResult> {
  const n = data.length / dim;
  if (!Number.isInteger(n) || n < 1) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `need at least one row of ${dim} values, got ${data.length} values`, { field: 'data' });
  }
  // Batches and the schedule count the augmented rows; metrics, the codebook init and the split use the input's.
  const o = resolveOptions(options, n * (1 + (options.augmentCopies ?? 0)));
  const report = options.onProgress ?? (() => {});
  const inputs = o.normalize === 'l2' ? l2NormalizeRows(data, dim) : data;
  const trainRows = o.augmentCopies > 0 ? noisyCopies(inputs, dim, o.augmentCopies, o.augmentNoise, o.normalize === 'l2', Math.imul(o.seed + 17, 0x2f6b1d35)) : inputs;
  const nTrain = trainRows.length / dim;
  const shape = shapeOf(o, dim);
  const layout = paramLayout(shape);
  const params = initParams(layout, o.seed);
  const model: TrainedModel = { shape, layout, params, normalize: o.normalize };
  const pulled = layout.encoder[layout.frozenEncoderLayers]!;
  const segments = o.identityPull > 0
    ? layout.specs.map((spec) => (spec.name === pulled.weight ? { ...spec, identityPull: { lambda: o.identityPull, side: pulled.inDim } } : spec))
    : layout.specs;
  const optimizer = new AdamW(params, segments, { weightDecay: o.weightDecay });
  const batch = o.batchSize;
  const states = shape.codebookSizes.map((k) => new CodebookState(k, shape.latentDim, {
    decay: o.emaDecay, ema: o.codebookUpdate === 'ema', restart: o.restartDead, threshold: deadThresholdOf(o, batch, k),
  }));
  const state: TrainingState = { model, options: o, optimizer, codebooks: states, epoch: 0 };
  if (o.resume !== undefined) {
    await loadTrainingState(o.resume, state);
    report({ kind: 'init', message: `resumed from ${o.resume} after epoch ${state.epoch}` });
  } else if (options.initialParams !== undefined) {
    if (options.initialParams.length !== params.length) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `initialParams has ${options.initialParams.length} values, the model ${params.length}`,
        { field: 'initialParams' });
    }
    params.set(options.initialParams);
    await initialiseCodebooks(state, inputs, batch, false);
  } else {
    const fits = shape.codebookSizes.every((k) => k <= Math.min(n, o.initSample ?? n));
    report({
      kind: 'init',
      message: o.init === 'random' ? 'random codebooks'
        : fits ? 'initialising codebooks: RQ-KMeans on the initial latents'
          : `random codebooks: RQ-KMeans cannot fit ${Math.max(...shape.codebookSizes)} codes to ${Math.min(n, o.initSample ?? n)} rows`,
    });
    const kept = await fitInputProjection(model, inputs);
    if (kept !== null) {
      report({ kind: 'init', message: `input projection: top ${shape.inputProjection} principal components keep ${(100 * kept).toFixed(1)}% of the variance` });
    }
    await initialiseCodebooks(state, inputs, batch);
    report({ kind: 'initialised', params });
  }

  const graph = buildStepGraph({
    shape, assignment: o.assignment, sinkhornIterations: o.sinkhornIterations, commitment: o.commitment,
    codebookUpdate: o.codebookUpdate, levelInputs: o.restartDead, denoise: o.inputNoise > 0,
  });
  const session = await createSession(graph.bytes, o.threads);
  const pairStep = options.pairs !== undefined && options.pairs.count > 0
    ? await ContrastiveStep.create(state, options.pairs, batch)
    : null;
  const xBuf = new Float32Array(batch * dim);
  const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', xBuf, [batch, dim]) };
  // Denoising: x gets the noisy rows, target the clean ones.
  const targetBuf = o.inputNoise > 0 ? new Float32Array(batch * dim) : xBuf;
  if (o.inputNoise > 0) feeds.target = new ort.Tensor('float32', targetBuf, [batch, dim]);
  for (const name of graph.inputs) {
    const spec = layout.byName.get(name);
    if (spec !== undefined) feeds[name] = new ort.Tensor('float32', paramView(params, spec), spec.dims);
  }
  const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
  feeds.commit_weight = scalar(o.commitWeight);
  if (graph.inputs.includes('beta')) feeds.beta = scalar(o.beta);
  if (graph.inputs.includes('sinkhorn_eps')) feeds.sinkhorn_eps = scalar(o.sinkhornEpsilon);
  const segmentIndex = new Map(layout.specs.map((s, i) => [s.name, i]));
  const reconSteps = stepsPerEpoch(nTrain, batch);
  const pairSteps = pairStep?.stepsPerEpoch ?? 0;
  const steps = reconSteps + pairSteps;
  const history: EpochSummary[] = [];
  const startEpoch = state.epoch;
  let codes: Int32Array | null = null;

  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const started = performance.now();
      let trainMs = 0;
      const perm = epochPermutation(nTrain, o.seed, epoch);
      const used = shape.codebookSizes.map((k) => new Uint8Array(k));
      const restarts = shape.codebookSizes.map(() => 0);
      let recon = 0;
      let commit = 0;
      let contrastive = 0;
      let r = 0;
      const pairEpoch = epoch >= o.pairFromEpoch && epoch < o.pairUntilEpoch;
      for (let step = 0; step < steps; step++) {
        const t0 = performance.now();
        const lr = learningRate(o, epoch + step / steps);
        // Bresenham interleave: pair step p runs when the pair share of steps done so far falls behind.
        const isPair = pairStep !== null && Math.floor(((step + 1) * pairSteps) / steps) > Math.floor((step * pairSteps) / steps);
        if (isPair) {
          if (pairEpoch) contrastive += await pairStep!.run(epoch, step - r, lr);
        } else {
          gatherRows(trainRows, dim, perm, r * batch, batch, targetBuf);
          if (o.inputMix > 0) mixRows(targetBuf, inputs, dim, o.inputMix, o.normalize === 'l2', Math.imul(o.seed + 13, 0x165667b1) ^ (epoch * steps + step), targetBuf);
          if (o.inputNoise > 0) {
            addInputNoise(targetBuf, dim, o.inputNoise, o.normalize === 'l2', Math.imul(o.seed + 11, 0x27d4eb2f) ^ (epoch * steps + step), xBuf);
          }
          const out = await session.run(feeds);
          for (const name of graph.trained) {
            optimizer.stepSegment(segmentIndex.get(name)!, out[`grad_${name}`]!.data as Float32Array, lr);
          }
          const batchCodes = out.codes!.data as BigInt64Array;
          const levels = shape.codebookSizes.length;
          for (let l = 0; l < levels; l++) {
            const spec = layout.byName.get(layout.codebooks[l]!)!;
            const restarted = states[l]!.update({
              codes: batchCodes, levels, level: l, batch,
              levelInput: out[`level_input_${l}`]?.data as Float32Array | undefined,
              sums: out[`ema_sums_${l}`]?.data as Float32Array | undefined,
            }, paramView(params, spec), Math.imul(o.seed + 7, 0x2c1b3c6d) ^ (epoch * steps + step) ^ (l << 24));
            restarts[l]! += restarted.length;
            if (restarted.length > 0 && o.codebookUpdate === 'gradient') {
              optimizer.resetRows(segmentIndex.get(spec.name)!, restarted, shape.latentDim);
            }
            for (let i = 0; i < batch; i++) used[l]![Number(batchCodes[i * levels + l])] = 1;
          }
          const stepRecon = (out.loss_recon!.data as Float32Array)[0]!;
          const stepCommit = (out.loss_commit!.data as Float32Array)[0]!;
          if (!Number.isFinite(stepRecon) || !Number.isFinite(stepCommit)) {
            throw new SidxError('SIDX_ERR_INTERNAL', `training diverged at epoch ${epoch + 1}, step ${step + 1}: loss is not finite (lower --lr)`);
          }
          recon += stepRecon;
          commit += stepCommit;
          r++;
          report({ kind: 'step', epoch, epochs: o.epochs, step, steps, lr, recon: stepRecon, commit: stepCommit });
        }
        trainMs += performance.now() - t0;
      }
      state.epoch = epoch + 1;
      const last = epoch + 1 === o.epochs;
      const summary: EpochSummary = {
        epoch, trainSeconds: trainMs / 1000, seconds: 0, steps, recon: recon / r, commit: commit / r, restarts,
        trainUtilisation: used.map((u) => u.reduce((s, v) => s + v, 0) / u.length),
      };
      if (pairSteps > 0 && pairEpoch) summary.contrastive = contrastive / pairSteps;
      if (last || (o.evalEvery > 0 && (epoch + 1) % o.evalEvery === 0)) {
        codes = await encodeAll(model, inputs, o.threads);
        summary.metrics = sidQualityMetrics(codes, n, shape.codebookSizes);
      }
      summary.seconds = (performance.now() - started) / 1000;
      history.push(summary);
      report({ kind: 'epoch', epochs: o.epochs, ...summary });
      if (o.checkpoint !== undefined) {
        await saveTrainingState(o.checkpoint, state);
        report({ kind: 'checkpoint', epoch, path: o.checkpoint });
      }
    }
  } finally {
    await session.release();
    await pairStep?.close();
  }
  if (o.maxItemsPerSid > 0) {
    const split = await splitCollisions(model, inputs, o.maxItemsPerSid, o.threads === undefined ? {} : { threads: o.threads });
    codes = split.codes;
    report({ kind: 'split', moved: split.moved, rounds: split.rounds, maxItemsPerSid: split.maxItemsPerSid });
  }
  codes ??= await encodeAll(model, inputs, o.threads);
  const reconstructions = await decodeAll(model, codes, o.threads);
  const metrics = sidQualityMetrics(codes, n, shape.codebookSizes, { inputs, reconstructions, dim });
  return { model, options: o, n, inputs, codes, reconstructions, metrics, history, startEpoch };
}
