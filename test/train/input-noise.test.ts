/**
 * Training-row noise (src/train/input-noise.ts): the denoising input noise is off at level 0, seeded, its per-row
 * levels spread over [0, S], rows re-normalised for l2 models; augmented copies follow the rows at noise S; mixture
 * rows are means of input rows. The trainer with these options: batches count the copies, metrics the input rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addInputNoise, mixRows, noisyCopies } from '../../src/train/input-noise.ts';
import { trainRqVae } from '../../src/train/rqvae.ts';
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

test('noisyCopies: the rows, then N copies each at noise S x the row norm, seeded', () => {
  const rows = clean.subarray(0, 100 * dim);
  const aug = noisyCopies(rows, dim, 3, 0.6, true, 4);
  assert.equal(aug.length, 4 * rows.length);
  assert.deepEqual(aug.subarray(0, rows.length), rows);
  assert.deepEqual(aug, noisyCopies(rows, dim, 3, 0.6, true, 4));
  for (let c = 1; c <= 3; c++) {
    let cos = 0;
    for (let i = 0; i < 100; i++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += aug[(c * 100 + i) * dim + j]! * rows[i * dim + j]!;
      cos += d / 100;
      assert.ok(Math.abs(rowNorm(aug, c * 100 + i) - 1) < 1e-5);
    }
    // A unit row plus noise of norm 0.6, re-normalised: cosine about 1 / sqrt(1.36) = 0.857.
    assert.ok(cos > 0.82 && cos < 0.89, `copy ${c}: mean cosine ${cos}`);
  }
});

test('mixRows: a share of the rows become normalised means of several input rows, the others stay', () => {
  const batch = clean.slice(0, 400 * dim);
  const out = new Float32Array(batch.length);
  mixRows(batch, clean, dim, 0.5, true, 2, out);
  let mixed = 0;
  for (let i = 0; i < 400; i++) {
    let same = true;
    for (let j = 0; j < dim; j++) if (out[i * dim + j] !== batch[i * dim + j]) same = false;
    if (!same) mixed++;
    assert.ok(Math.abs(rowNorm(out, i) - 1) < 1e-5);
  }
  assert.ok(mixed > 150 && mixed < 250, `${mixed} of 400 rows mixed`);
});

test('trainer: --augment-copies counts the copies in batches and steps, metrics and codes cover the input rows', async () => {
  const n = 256;
  const rows = clean.subarray(0, n * dim);
  const res = await trainRqVae(rows, dim, {
    method: 'rqvae', codebookSizes: [8, 8], hidden: [16], latentDim: 8, epochs: 2, batchSize: 128, seed: 1, threads: 1,
    evalEvery: 0, normalize: 'l2', augmentCopies: 3, augmentNoise: 0.5, inputNoise: 0.4,
  });
  assert.equal(res.n, n);
  assert.equal(res.codes.length, n * 2);
  assert.equal(res.metrics.items, n);
  assert.equal(res.options.steps, 2 * (4 * n) / 128);
  assert.equal(res.history[0]!.steps, (4 * n) / 128);
});
