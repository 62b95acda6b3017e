/**
 * AdamW over segments of one flat Float32Array of parameters, with PyTorch's torch.optim.AdamW semantics
 * (decoupled weight decay, bias-corrected moments, eps added after the square root):
 *   p *= 1 - lr * wd                                  (only segments with decay, i.e. matrices)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * A segment with `identityPull` (a square side x side matrix) is then pulled towards the identity, decoupled like the
 * decay: p -= lr * lambda * (p - I).
 * Each segment keeps its own step count t, as PyTorch keeps one per parameter: a segment that gets no gradient in
 * a step (e.g. the logit scales in a reconstruction step) is left alone, moments included, like a parameter whose
 * .grad is None. The moments live in flat arrays parallel to the parameters (checkpointed as they are).
 * One pass per segment, O(parameters) per step.
 */

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface OptimizerSegment {
  offset: number;
  size: number;
  decay: boolean;
  /** A square matrix (side x side, row-major) drawn towards the identity at rate lambda after each step. */
  identityPull?: { lambda: number; side: number };
}

export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
  /** Steps taken per segment (same order as the segments). */
  steps: Int32Array;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly segments: readonly OptimizerSegment[];
  readonly state: AdamWState;
  #params: Float32Array;

  constructor(params: Float32Array, segments: readonly OptimizerSegment[], options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 1e-4;
    for (const s of segments) {
      if (s.offset < 0 || s.size < 0 || s.offset + s.size > params.length) {
        throw new RangeError(`segment [${s.offset}, ${s.offset + s.size}) is outside the ${params.length} parameters`);
      }
      if (s.identityPull && s.identityPull.side ** 2 !== s.size) throw new RangeError(`an identity pull needs a square segment, not ${s.size} values`);
    }
    this.#params = params;
    this.segments = segments;
    this.state = { m: new Float32Array(params.length), v: new Float32Array(params.length), steps: new Int32Array(segments.length) };
  }

  /** Updates segment `index` from its gradient `grad` (length = segment size) at learning rate `lr`. */
  stepSegment(index: number, grad: Float32Array, lr: number): void {
    const seg = this.segments[index]!;
    if (grad.length !== seg.size) throw new RangeError(`gradient of segment ${index} has ${grad.length} values, expected ${seg.size}`);
    const t = ++this.state.steps[index]!;
    const { beta1: b1, beta2: b2, eps } = this;
    const stepSize = lr / (1 - b1 ** t);
    const invSqrtBc2 = 1 / Math.sqrt(1 - b2 ** t);
    const shrink = seg.decay ? 1 - lr * this.weightDecay : 1;
    const p = this.#params;
    const { m, v } = this.state;
    const end = seg.offset + seg.size;
    for (let i = seg.offset, j = 0; i < end; i++, j++) {
      const gi = grad[j]!;
      const mi = b1 * m[i]! + (1 - b1) * gi;
      const vi = b2 * v[i]! + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i]! * shrink - stepSize * mi / (Math.sqrt(vi) * invSqrtBc2 + eps);
    }
    if (seg.identityPull) this.#pull(seg.offset, seg.identityPull.side, lr * seg.identityPull.lambda);
  }

  #pull(offset: number, side: number, rate: number): void {
    const p = this.#params;
    for (let r = 0, i = offset; r < side; r++) {
      for (let c = 0; c < side; c++, i++) p[i] = p[i]! - rate * (p[i]! - (r === c ? 1 : 0));
    }
  }

  /** Clears the moments of rows [row, row + 1) of width `width` inside segment `index` (a restarted codeword). */
  resetRows(index: number, rows: readonly number[], width: number): void {
    const seg = this.segments[index]!;
    for (const row of rows) {
      const start = seg.offset + row * width;
      this.state.m.fill(0, start, start + width);
      this.state.v.fill(0, start, start + width);
    }
  }

  /** Restores moments and step counts (e.g. from a checkpoint). */
  load(state: AdamWState): void {
    if (state.m.length !== this.state.m.length || state.steps.length !== this.state.steps.length) {
      throw new RangeError('optimizer state does not match the parameter layout');
    }
    this.state.m.set(state.m);
    this.state.v.set(state.v);
    this.state.steps.set(state.steps);
  }
}
