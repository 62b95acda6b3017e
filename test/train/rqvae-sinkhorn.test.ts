/**
 * The in-graph Sinkhorn assignment (src/numeric/sinkhorn-fragment.ts) against a float64 JavaScript transcription
 * of FORGE's al_sid algorithm (z-scored distances, exp(-eps cost), alternating prototype/sample normalisation,
 * argmax), and its balancing effect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/numeric/onnx-builder.ts';
import { appendSinkhornLabels } from '../../src/numeric/sinkhorn-fragment.ts';
import type { FloatType } from '../../src/numeric/dense-graph.ts';
import { gaussian, rng } from '../helpers/random.ts';

/** FORGE's sinkhorn + find_nearest_embedding, literally, in float64. */
function forgeLabels(r: Float64Array, c: Float64Array, n: number, k: number, h: number, eps: number, iters: number): Int32Array {
  const d = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < h; t++) s += (r[i * h + t]! - c[j * h + t]!) ** 2;
      d[i * k + j] = s;
    }
  }
  let mean = 0;
  for (const v of d) mean += v;
  mean /= d.length;
  let variance = 0;
  for (const v of d) variance += (v - mean) ** 2;
  const std = Math.sqrt(variance / d.length); // population std (the fragment's choice; torch uses n - 1)
  const cost = Float64Array.from(d, (v) => (v - mean) / (std + 1e-6));
  const min = Math.min(...cost);
  const q = Float64Array.from(cost, (v) => Math.exp(-(v - min) * eps)); // q[i * k + j], FORGE's Q is its transpose
  let total = 0;
  for (const v of q) total += v;
  for (let i = 0; i < q.length; i++) q[i]! /= total + 1e-8;
  for (let it = 0; it < iters; it++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += q[i * k + j]!;
      for (let i = 0; i < n; i++) q[i * k + j] = q[i * k + j]! / (s + 1e-8) / k;
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += q[i * k + j]!;
      for (let j = 0; j < k; j++) q[i * k + j] = q[i * k + j]! / (s + 1e-8) / n;
    }
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (q[i * k + j]! > q[i * k + best]!) best = j;
    labels[i] = best;
  }
  return labels;
}

async function fragmentLabels(dtype: FloatType, r: Float64Array, c: Float64Array, n: number, k: number, h: number,
  eps: number, iters: number): Promise<Int32Array> {
  const g = new GraphBuilder('sinkhorn_fragment_test');
  const points = g.input('points', dtype, ['N', h]);
  const book = g.input('codebook', dtype, [k, h]);
  const epsilon = g.input('eps', dtype, []);
  g.output(appendSinkhornLabels(g, points, book, { dtype, iterations: iters, epsilon, codebookSize: k }), 'int64', ['N', 1], 'labels');
  const s = await ort.InferenceSession.create(g.serialize(), { logSeverityLevel: 3 });
  const T = dtype === 'float64' ? Float64Array : Float32Array;
  const out = await s.run({
    points: new ort.Tensor(dtype, T.from(r), [n, h]),
    codebook: new ort.Tensor(dtype, T.from(c), [k, h]),
    eps: new ort.Tensor(dtype, T.of(eps), []),
  });
  await s.release();
  return Int32Array.from(out.labels!.data as BigInt64Array, Number);
}

function data(n: number, h: number, seed: number, offset = 0): Float64Array {
  const g = gaussian(rng(seed));
  return Float64Array.from({ length: n * h }, () => g() + offset);
}

test('in-graph Sinkhorn equals FORGE\'s algorithm (float64 graph: all labels; float32 graph: >= 99%)', async () => {
  for (const [n, k, h, eps, iters, seed] of [[200, 16, 8, 10, 5, 1], [300, 32, 4, 3, 3, 2], [64, 64, 6, 10, 5, 3]] as const) {
    const r = data(n, h, seed);
    const c = data(k, h, seed + 100, 0.5); // shifted codebook: an unbalanced nearest-code assignment
    const expected = forgeLabels(r, c, n, k, h, eps, iters);
    assert.deepEqual(await fragmentLabels('float64', r, c, n, k, h, eps, iters), expected, `n=${n} k=${k}`);
    const f32 = await fragmentLabels('float32', r, c, n, k, h, eps, iters);
    const agree = f32.reduce((s, v, i) => s + (v === expected[i] ? 1 : 0), 0);
    assert.ok(agree >= 0.99 * n, `float32 agrees on ${agree}/${n}`);
  }
});

test('Sinkhorn spreads a skewed assignment over the codebook', async () => {
  const n = 512, k = 32, h = 8;
  const r = data(n, h, 7);
  const c = data(k, h, 8, 1.5);
  const counts = (labels: Int32Array) => {
    const out = new Int32Array(k);
    for (const l of labels) out[l]!++;
    return out;
  };
  const argmin = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    let best = 0, bestD = Infinity;
    for (let j = 0; j < k; j++) {
      let d = 0;
      for (let t = 0; t < h; t++) d += (r[i * h + t]! - c[j * h + t]!) ** 2;
      if (d < bestD) { bestD = d; best = j; }
    }
    argmin[best]!++;
  }
  const balanced = counts(await fragmentLabels('float32', r, c, n, k, h, 10, 5));
  const used = (a: Int32Array) => a.filter((v) => v > 0).length;
  assert.ok(used(balanced) > used(argmin), `codes used: sinkhorn ${used(balanced)} vs argmin ${used(argmin)}`);
  assert.ok(Math.max(...balanced) < Math.max(...argmin), `largest: sinkhorn ${Math.max(...balanced)} vs argmin ${Math.max(...argmin)}`);
});
