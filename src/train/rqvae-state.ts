/**
 * The mutable state of an RQ-VAE training run (parameters, optimiser, codebook EMA state, completed epochs): its
 * initialisation (codebooks from RQ-KMeans on the initial latents) and its checkpoint round trip.
 */
import { SidxError } from '../errors.ts';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import type { CodebookState } from './codebook-ema.ts';
import type { AdamW } from './optimizer.ts';
import type { TrainedModel } from './rqvae-export-graphs.ts';
import { paramView } from './rqvae-model.ts';
import { modelDefiningOptions, type ResolvedOptions } from './rqvae-options.ts';
import { latentsOf } from './rqvae-runtime.ts';
import { trainRqKmeans } from './rqkmeans.ts';
import { principalComponents } from '../vector/vector-index.ts';

export interface TrainingState {
  model: TrainedModel;
  options: ResolvedOptions;
  optimizer: AdamW;
  codebooks: CodebookState[];
  /** Epochs completed. */
  epoch: number;
}

interface CheckpointHeader {
  kind: 'sidx-rqvae-training';
  model: Record<string, unknown>;
  inputDim: number;
  epoch: number;
  seed: number;
  optimizerSteps: number[];
}

/**
 * The frozen input projection (shape.inputProjection = P): the top P principal components of `inputs` (FAISS PCA,
 * centred), written into `proj_w` / `proj_b`. Returns the share of the rows' variance the P components keep, or
 * null when the model has no projection.
 */
export async function fitInputProjection(model: TrainedModel, inputs: Float32Array): Promise<number | null> {
  const { shape, layout, params } = model;
  const p = shape.inputProjection ?? 0;
  if (p === 0) return null;
  const n = inputs.length / shape.inputDim;
  if (n < Math.max(2, p)) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `an input projection to ${p} dimensions needs at least ${Math.max(2, p)} rows, got ${n}`,
      { field: 'inputProjection' });
  }
  const fit = await principalComponents(inputs, shape.inputDim, p);
  paramView(params, layout.byName.get('proj_w')!).set(fit.weight);
  paramView(params, layout.byName.get('proj_b')!).set(fit.bias);
  return fit.totalVariance > 0 ? Math.min(1, fit.eigenvalues.reduce((a, v) => a + v, 0) / fit.totalVariance) : 1;
}

/**
 * Codebooks from RQ-KMeans on the latents of the (seeded) initial encoder, or kept as they are (random init, or
 * `fitCodebooks` false: given parameters); the codebook usage EMA starts at each code's expected hits per batch of `batch`
 * rows under the initial assignment (uniform when there is no fit).
 */
export async function initialiseCodebooks(state: TrainingState, inputs: Float32Array, batch: number, fitCodebooks = true): Promise<void> {
  const { model, options: o } = state;
  const { shape, layout, params } = model;
  const n = inputs.length / shape.inputDim;
  // k-means cannot place more codewords than there are rows: such a run keeps the random codebooks.
  const fitsRows = shape.codebookSizes.every((k) => k <= (o.initSample === undefined ? n : Math.min(n, o.initSample)));
  if (o.init === 'random' || !fitCodebooks || !fitsRows) {
    state.codebooks.forEach((s, l) => {
      const k = shape.codebookSizes[l]!;
      s.initialise(paramView(params, layout.byName.get(layout.codebooks[l]!)!), new Float32Array(k).fill(batch / k));
    });
    return;
  }
  const latents = await latentsOf(model, inputs, o.threads);
  const fit = await trainRqKmeans(latents, shape.latentDim, {
    codebookSizes: shape.codebookSizes, seed: o.seed, iterations: o.initIterations,
    ...(o.initSample === undefined ? {} : { sample: o.initSample }),
  });
  const levels = shape.codebookSizes.length;
  fit.codebooks.forEach((book, l) => {
    const view = paramView(params, layout.byName.get(layout.codebooks[l]!)!);
    view.set(book);
    const perStep = new Float32Array(shape.codebookSizes[l]!);
    for (let i = 0; i < n; i++) perStep[fit.codes[i * levels + l]!]! += batch / n;
    state.codebooks[l]!.initialise(view, perStep);
  });
}

export async function saveTrainingState(path: string, state: TrainingState): Promise<void> {
  const arrays = new Map<string, Float32Array>([
    ['params', state.model.params],
    ['adam_m', state.optimizer.state.m],
    ['adam_v', state.optimizer.state.v],
  ]);
  state.codebooks.forEach((c, l) => {
    arrays.set(`usage_${l}`, c.usage);
    if (c.embedEma !== null) arrays.set(`embed_ema_${l}`, c.embedEma);
  });
  const header: CheckpointHeader = {
    kind: 'sidx-rqvae-training',
    model: modelDefiningOptions(state.options),
    inputDim: state.model.shape.inputDim,
    epoch: state.epoch,
    seed: state.options.seed,
    optimizerSteps: Array.from(state.optimizer.state.steps),
  };
  await writeCheckpoint(path, header, arrays);
}

/** Restores `state` from a checkpoint written under the same model-defining options. */
export async function loadTrainingState(path: string, state: TrainingState): Promise<void> {
  const { header, arrays } = await readCheckpoint<CheckpointHeader>(path);
  const fail = (msg: string) => new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: ${msg}`, { field: 'resume' });
  if (header.kind !== 'sidx-rqvae-training') throw fail('is not an RQ-VAE training checkpoint');
  const expected = JSON.stringify(modelDefiningOptions(state.options));
  if (JSON.stringify(header.model) !== expected || header.inputDim !== state.model.shape.inputDim) {
    throw fail(`was written for ${JSON.stringify({ ...header.model, inputDim: header.inputDim })}, this run is `
      + `${JSON.stringify({ ...modelDefiningOptions(state.options), inputDim: state.model.shape.inputDim })}`);
  }
  const take = (name: string, length: number): Float32Array => {
    const a = arrays.get(name);
    if (a === undefined || a.length !== length) throw fail(`array ${name} is missing or has the wrong length`);
    return a;
  };
  const total = state.model.params.length;
  state.model.params.set(take('params', total));
  state.optimizer.load({
    m: take('adam_m', total), v: take('adam_v', total), steps: Int32Array.from(header.optimizerSteps),
  });
  state.codebooks.forEach((c, l) => {
    c.usage.set(take(`usage_${l}`, c.usage.length));
    if (c.embedEma !== null) c.embedEma.set(take(`embed_ema_${l}`, c.embedEma.length));
  });
  state.epoch = header.epoch;
}
