/**
 * Denoising input noise (src/train/input-noise.ts): off at level 0, seeded, per-row levels spread over [0, S],
 * rows re-normalised for l2 models.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addInputNoise } from '../../src/train/input-noise.ts';
import { clusteredEmbeddings } from '../../src/eval/synthetic.ts';

const dim = 64;
const n = 2000;
const clean = clusteredEmbeddings({ n, dim, seed: 3, clusters: 10, noise: 0.2 });

function rowNorm(a: Float32Array, i: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += a[i * dim + j]! ** 2;
  return Math.sqrt(s);
}

test('level 0 leaves the rows as they are', () => {
  const out = new Float32Array(clean.length);
  addInputNoise(clean, dim, 0, true, 1, out);
  for (let i = 0; i < clean.length; i++) assert.ok(Math.abs(out[i]! - clean[i]!) < 1e-6);
});

test('seeded: the same seed gives the same noise, another seed other noise', () => {
  const a = new Float32Array(clean.length);
  const b = new Float32Array(clean.length);
  const c = new Float32Array(clean.length);
  addInputNoise(clean, dim, 0.8, false, 5, a);
  addInputNoise(clean, dim, 0.8, false, 5, b);
  addInputNoise(clean, dim, 0.8, false, 6, c);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('per-row noise norms spread over [0, S] x the row norm; l2 re-normalises', () => {
  const level = 0.8;
  const out = new Float32Array(clean.length);
  addInputNoise(clean, dim, level, false, 9, out);
  const diff = Float32Array.from(out, (v, i) => v - clean[i]!);
  const rel = Array.from({ length: n }, (_, i) => rowNorm(diff, i) / rowNorm(clean, i));
  const mean = rel.reduce((s, v) => s + v, 0) / n;
  // E[u] S = 0.4; the norm of D Gaussians of variance (u S)^2 / D is about u S.
  assert.ok(mean > 0.35 && mean < 0.45, `mean relative noise ${mean}`);
  assert.ok(Math.min(...rel) < 0.05 && Math.max(...rel) > 0.7 && Math.max(...rel) < 1.1, `${Math.min(...rel)} .. ${Math.max(...rel)}`);
  addInputNoise(clean, dim, level, true, 9, out);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(rowNorm(out, i) - 1) < 1e-5);
});
