/** Placeholder: FORGE's contrastive step (implemented below in a later change). */
import type { TrainingState } from './rqvae-state.ts';

export interface PairSet {
  /** Row indices of the first and second item of each pair. */
  a: Int32Array;
  b: Int32Array;
  count: number;
}

export class ContrastiveStep {
  readonly stepsPerEpoch = 0;
  static async create(_state: TrainingState, _pairs: PairSet, _inputs: Float32Array, _batch: number): Promise<ContrastiveStep> {
    throw new Error('contrastive training is not implemented yet');
  }
  async run(_epoch: number, _index: number, _lr: number): Promise<number> {
    return 0;
  }
  async close(): Promise<void> {}
}
