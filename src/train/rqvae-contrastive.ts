/**
 * Runs FORGE's contrastive step (rqvae-contrastive-graph.ts) inside the trainer: pair batches of min(batch, pairs)
 * pairs, drawn in a seeded permutation per epoch (full batches only, like FORGE's drop_last loader), each
 * followed by an AdamW step over every parameter that got a gradient (the logit scales only ever get one here).
 * Codebook EMA state and dead-code restarts are updated by reconstruction steps only. With `selfPairs` N, N pairs
 * (i, i) per row of the pair vectors follow the given pairs, their sides noised at `selfPairNoise`.
 */
import ort from 'onnxruntime-node';
import { SidxError } from '../errors.ts';
import { buildContrastiveGraph } from './rqvae-contrastive-graph.ts';
import { paramView, seededPermutation } from './rqvae-model.ts';
import { createSession } from './rqvae-runtime.ts';
import type { TrainingState } from './rqvae-state.ts';
import { l2NormalizeRows } from './rqkmeans.ts';
import { addInputNoise } from './input-noise.ts';

export interface PairSet {
  /** The vectors the pairs point into (rows of `dim` floats; same dim as the training input). */
  vectors: Float32Array;
  /** Row indices of the first and second item of each pair. */
  a: Int32Array;
  b: Int32Array;
  count: number;
}

export class ContrastiveStep {
  readonly stepsPerEpoch: number;
  readonly batch: number;
  #state: TrainingState;
  #pairs: PairSet;
  #vectors: Float32Array;
  #session: ort.InferenceSession;
  #trained: string[];
  #feeds: Record<string, ort.Tensor>;
  #xa: Float32Array;
  #xb: Float32Array;
  #order: Int32Array | null = null;
  /** Pairs at and after this index are self pairs (options.selfPairs). */
  #selfFrom: number;
  /** Per batch row: the noise scale of its pair (pairNoise, or selfPairNoise for a self pair). */
  #noise: Float32Array;
  #orderEpoch = -1;

  private constructor(state: TrainingState, pairs: PairSet, selfFrom: number, vectors: Float32Array, batch: number,
    session: ort.InferenceSession, inputs: string[], trained: string[], maxSteps: number) {
    const { model, options: o } = state;
    const dim = model.shape.inputDim;
    this.#state = state;
    this.#selfFrom = selfFrom;
    this.#pairs = pairs;
    this.#noise = new Float32Array(batch);
    this.#vectors = vectors;
    this.#session = session;
    this.#trained = trained;
    this.batch = batch;
    this.stepsPerEpoch = Math.min(maxSteps, Math.max(1, Math.floor(pairs.count / batch)));
    this.#xa = new Float32Array(batch * dim);
    this.#xb = new Float32Array(batch * dim);
    const feeds: Record<string, ort.Tensor> = {
      xa: new ort.Tensor('float32', this.#xa, [batch, dim]),
      xb: new ort.Tensor('float32', this.#xb, [batch, dim]),
      commit_weight: new ort.Tensor('float32', Float32Array.of(o.commitWeight), []),
      contrastive_weight: new ort.Tensor('float32', Float32Array.of(o.contrastiveWeight), []),
      recon_weight: new ort.Tensor('float32', Float32Array.of(o.pairReconWeight), []),
    };
    if (inputs.includes('beta')) feeds.beta = new ort.Tensor('float32', Float32Array.of(o.beta), []);
    if (inputs.includes('sinkhorn_eps')) feeds.sinkhorn_eps = new ort.Tensor('float32', Float32Array.of(o.sinkhornEpsilon), []);
    for (const name of inputs) {
      const spec = model.layout.byName.get(name);
      if (spec !== undefined) feeds[name] = new ort.Tensor('float32', paramView(model.params, spec), spec.dims);
    }
    this.#feeds = feeds;
  }

  /**
   * `maxBatch`: the reconstruction batch size; pair batches use the same, capped at the number of pairs.
   * With `options.pairBatches` = N an epoch runs at most N pair batches (the first of its permutation).
   */
  static async create(state: TrainingState, pairs: PairSet, maxBatch: number): Promise<ContrastiveStep> {
    const { model, options: o } = state;
    const dim = model.shape.inputDim;
    const rows = pairs.vectors.length / dim;
    if (!Number.isInteger(rows) || pairs.a.length !== pairs.count || pairs.b.length !== pairs.count || pairs.count < 1) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `pairs must hold ${dim}-d vectors and ${pairs.count} index pairs`, { field: 'pairs' });
    }
    for (let i = 0; i < pairs.count; i++) {
      if (!(pairs.a[i]! >= 0 && pairs.a[i]! < rows && pairs.b[i]! >= 0 && pairs.b[i]! < rows)) {
        throw new SidxError('SIDX_ERR_INVALID_INPUT', `pair ${i} points outside the ${rows} rows`, { field: `pairs[${i}]` });
      }
    }
    const vectors = o.normalize === 'l2' ? l2NormalizeRows(pairs.vectors, dim) : pairs.vectors;
    const graph = buildContrastiveGraph({
      shape: model.shape, assignment: o.assignment, sinkhornIterations: o.sinkhornIterations, commitment: o.commitment,
      codebookUpdate: o.codebookUpdate,
    });
    const session = await createSession(graph.bytes, o.threads);
    const maxSteps = o.pairBatches === 'all' ? Infinity : o.pairBatches;
    const all = withSelfPairs(pairs, dim, o.selfPairs);
    return new ContrastiveStep(state, all, pairs.count, vectors, Math.min(maxBatch, all.count), session, graph.inputs, graph.trained, maxSteps);
  }

  /** Runs pair batch `index` of `epoch` and steps the optimiser at `lr`; returns the contrastive loss. */
  async run(epoch: number, index: number, lr: number): Promise<number> {
    const { model, options: o, optimizer } = this.#state;
    const dim = model.shape.inputDim;
    if (this.#orderEpoch !== epoch) {
      this.#order = pairPermutation(this.#pairs.count, o.seed, epoch);
      this.#orderEpoch = epoch;
    }
    const order = this.#order!;
    for (let i = 0; i < this.batch; i++) {
      const pair = order[index * this.batch + i]!;
      const ra = this.#pairs.a[pair]!;
      const rb = this.#pairs.b[pair]!;
      this.#noise[i] = pair >= this.#selfFrom ? o.selfPairNoise : o.pairNoise;
      this.#xa.set(this.#vectors.subarray(ra * dim, (ra + 1) * dim), i * dim);
      this.#xb.set(this.#vectors.subarray(rb * dim, (rb + 1) * dim), i * dim);
    }
    if (o.pairNoise > 0 || (o.selfPairs > 0 && o.selfPairNoise > 0)) {
      // Both items of every pair get fresh noise: the InfoNCE terms then ask for codes that survive it.
      const l2 = o.normalize === 'l2';
      const seed = Math.imul(o.seed + 17, 0x3c6ef372) ^ Math.imul(epoch + 1, 0x1b873593) ^ Math.imul(index + 1, 0x2545f491);
      const level = o.selfPairs === 0 ? o.pairNoise : this.#noise;
      addInputNoise(this.#xa, dim, level, l2, seed, this.#xa);
      addInputNoise(this.#xb, dim, level, l2, seed ^ 0x7f4a7c15, this.#xb);
    }
    const out = await this.#session.run(this.#feeds);
    const loss = (out.loss_contrastive!.data as Float32Array)[0]!;
    if (!Number.isFinite(loss)) {
      throw new SidxError('SIDX_ERR_INTERNAL', `contrastive training diverged at epoch ${epoch + 1}: loss is not finite (lower --lr)`);
    }
    const specs = model.layout.specs;
    for (const name of this.#trained) {
      optimizer.stepSegment(specs.findIndex((s) => s.name === name), out[`grad_${name}`]!.data as Float32Array, lr);
    }
    return loss;
  }

  async close(): Promise<void> {
    await this.#session.release();
  }
}

function pairPermutation(n: number, seed: number, epoch: number): Int32Array {
  return seededPermutation(n, Math.imul(seed + 3, 0x68e31da4) ^ Math.imul(epoch + 1, 0x1b873593));
}

/** The pairs followed by `copies` pairs (i, i) for every row of their vectors. */
function withSelfPairs(pairs: PairSet, dim: number, copies: number): PairSet {
  if (copies === 0) return pairs;
  const rows = pairs.vectors.length / dim;
  const count = pairs.count + rows * copies;
  const a = new Int32Array(count);
  const b = new Int32Array(count);
  a.set(pairs.a);
  b.set(pairs.b);
  for (let at = pairs.count; at < count; at++) a[at] = b[at] = (at - pairs.count) % rows;
  return { vectors: pairs.vectors, a, b, count };
}
