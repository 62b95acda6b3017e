/**
 * Helpers for the gradient tests: run a float64 training-step graph on ORT with parameters taken from one flat
 * Float64Array, and compare its gradient outputs with central finite differences of its own loss outputs
 * (codes held fixed: a coordinate whose perturbation changes any code is reported, not compared).
 */
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { paramLayout, type ParamLayout, type RqVaeShape } from '../../src/train/rqvae-model.ts';
import { gaussian, rng } from '../helpers/random.ts';

export type Feeds = Record<string, ort.Tensor>;

export function randn64(n: number, seed: number, scale = 1): Float64Array {
  const g = gaussian(rng(seed));
  return Float64Array.from({ length: n }, () => g() * scale);
}

export async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3 });
}

/** Feeds for every parameter input of `names` from the flat float64 params. */
export function paramFeeds(layout: ParamLayout, flat: Float64Array, names: readonly string[]): Feeds {
  const feeds: Feeds = {};
  for (const spec of layout.specs) {
    if (!names.includes(spec.name)) continue;
    feeds[spec.name] = new ort.Tensor('float64', flat.slice(spec.offset, spec.offset + spec.size), spec.dims);
  }
  return feeds;
}

export function scalar64(v: number): ort.Tensor {
  return new ort.Tensor('float64', Float64Array.of(v), []);
}

export function value(out: ort.InferenceSession.OnnxValueMapType, name: string): number {
  return Number((out[name]!.data as Float64Array)[0]);
}

/**
 * Compares the graph's `grad_<name>` outputs (from one run at `flat`) for every parameter in `trained` with
 * central differences of `objective` (a float64 reference of the same objective, codes and stop-gradient
 * anchors held at `flat`) over all coordinates. |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).
 */
export function checkGradients(out: ort.InferenceSession.OnnxValueMapType, layout: ParamLayout, flat: Float64Array,
  trained: readonly string[], objective: (p: Float64Array) => number,
  tolerances: { h?: number; rtol?: number; atol?: number } = {}): { compared: number; worst: number } {
  const h = tolerances.h ?? 1e-6;
  const rtol = tolerances.rtol ?? 1e-6;
  const atol = tolerances.atol ?? 1e-9;
  let compared = 0;
  let worst = 0;
  const p = flat.slice();
  for (const name of trained) {
    const spec = layout.byName.get(name)!;
    const analytic = out[`grad_${name}`]!.data as Float64Array;
    assert.equal(analytic.length, spec.size, `grad_${name} size`);
    for (let i = 0; i < spec.size; i++) {
      const at = spec.offset + i;
      p[at] = flat[at]! + h;
      const plus = objective(p);
      p[at] = flat[at]! - h;
      const minus = objective(p);
      p[at] = flat[at]!;
      const numeric = (plus - minus) / (2 * h);
      const a = analytic[i]!;
      const err = Math.abs(a - numeric);
      const tol = atol + rtol * Math.max(Math.abs(a), Math.abs(numeric));
      worst = Math.max(worst, err / tol);
      assert.ok(err <= tol, `${name}[${i}]: analytic ${a} vs finite difference ${numeric} (|diff| ${err} > ${tol})`);
      compared++;
    }
  }
  return { compared, worst };
}

export function tinyShape(levels = 2, k = 4): RqVaeShape {
  return { inputDim: 6, hidden: [5, 4], latentDim: 3, codebookSizes: Array(levels).fill(k) };
}

/** Flat float64 params: Gaussian weights scaled like the float32 init, codebooks near typical latents. */
export function tinyParams(shape: RqVaeShape, seed: number): Float64Array {
  const layout = paramLayout(shape);
  const flat = randn64(layout.total, seed, 0.5);
  layout.scales.forEach((name, i) => {
    flat[layout.byName.get(name)!.offset] = Math.log(1 / 0.07) - 0.4 * i;
  });
  return flat;
}
