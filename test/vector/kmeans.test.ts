import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SidxError } from '../../src/errors.ts';
import { assignNearest, kmeans, principalComponents } from '../../src/vector/vector-index.ts';
import { randomVectors, row, score } from './fixtures/data.ts';

const DIM = 8;

/** Points around k well separated centres. */
function clusteredData(k: number, perCluster: number, seed: number): Float32Array {
  const centres = randomVectors(k, DIM, seed);
  const noise = randomVectors(k * perCluster, DIM, seed + 1);
  const data = new Float32Array(k * perCluster * DIM);
  for (let i = 0; i < k * perCluster; i++) {
    for (let j = 0; j < DIM; j++) data[i * DIM + j] = centres[(i % k) * DIM + j] * 10 + noise[i * DIM + j];
  }
  return data;
}

test('kmeans is deterministic for a seed and its objective decreases', async () => {
  const data = clusteredData(6, 80, 41);
  const options = { niter: 15, seed: 7, minPointsPerCentroid: 1 };
  const first = await kmeans(data, DIM, 6, options);
  const second = await kmeans(data, DIM, 6, options);
  assert.equal(first.centroids.length, 6 * DIM);
  assert.deepEqual(first.centroids, second.centroids);
  assert.deepEqual(first.objective, second.objective);
  assert.equal(first.objective.length, 15);
  for (let i = 1; i < first.objective.length; i++) {
    assert.ok(first.objective[i] <= first.objective[i - 1] * (1 + 1e-5), `objective rose at iteration ${i}`);
  }
  assert.ok(first.objective[14] < first.objective[0]);
  assert.ok(first.centroids.every(Number.isFinite));
  const other = await kmeans(data, DIM, 6, { ...options, seed: 8 });
  assert.equal(other.centroids.length, 6 * DIM);
});

test('spherical kmeans returns unit-norm centroids', async () => {
  const { centroids } = await kmeans(randomVectors(500, DIM, 42), DIM, 5, { spherical: true, seed: 3, niter: 5 });
  for (let c = 0; c < 5; c++) assert.ok(Math.abs(score('ip', row(centroids, DIM, c), row(centroids, DIM, c)) - 1) < 1e-4);
});

test('assignNearest equals a brute-force nearest centroid', async () => {
  const data = randomVectors(200, DIM, 43);
  const centroids = randomVectors(9, DIM, 44);
  const { labels, distances } = await assignNearest(data, DIM, centroids);
  assert.equal(labels.length, 200);
  for (let i = 0; i < 200; i++) {
    let best = 0;
    for (let c = 1; c < 9; c++) {
      if (score('l2', row(data, DIM, i), row(centroids, DIM, c)) < score('l2', row(data, DIM, i), row(centroids, DIM, best))) best = c;
    }
    assert.equal(labels[i], best);
    const expected = score('l2', row(data, DIM, i), row(centroids, DIM, best));
    assert.ok(Math.abs(distances[i] - expected) <= 1e-3 * Math.max(1, expected));
  }
});

test('kmeans and assignNearest validate shapes', async () => {
  const isCode = (code: string) => (err: unknown) => err instanceof SidxError && err.code === code;
  await assert.rejects(kmeans(new Float32Array(10), DIM, 2), isCode('SIDX_ERR_DIMENSION'));
  await assert.rejects(kmeans(randomVectors(3, DIM, 45), DIM, 4), isCode('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(kmeans(randomVectors(30, DIM, 45), DIM, 0), isCode('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(kmeans(randomVectors(30, DIM, 45), DIM, 2, { niter: 0 }), isCode('SIDX_ERR_INVALID_INPUT'));
  await assert.rejects(assignNearest(randomVectors(3, DIM, 46), DIM, new Float32Array(DIM + 1)), isCode('SIDX_ERR_DIMENSION'));
  await assert.rejects(assignNearest(randomVectors(3, DIM, 46), DIM, new Float32Array(0)), isCode('SIDX_ERR_INVALID_INPUT'));
});

test('principalComponents finds the subspace of the variance, orthonormal, with the variances along it', async () => {
  // Rows = mean + a * u + b * v + tiny noise, with var(a) = 4 > var(b) = 1 along orthonormal u, v.
  const n = 4000;
  const mean = Float32Array.from({ length: DIM }, (_, j) => j - 3);
  const u = new Float32Array(DIM).fill(0);
  const v = new Float32Array(DIM).fill(0);
  u[0] = u[1] = Math.SQRT1_2;
  v[2] = 0.6;
  v[5] = 0.8;
  const coefficients = randomVectors(n, 3, 51);
  const data = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < DIM; j++) {
      data[i * DIM + j] = mean[j]! + 2 * coefficients[i * 3]! * u[j]! + coefficients[i * 3 + 1]! * v[j]! + 1e-3 * coefficients[i * 3 + 2]!;
    }
  }
  const { weight, bias, eigenvalues, totalVariance } = await principalComponents(data, DIM, 2);
  assert.equal(weight.length, DIM * 2);
  const column = (c: number) => Float32Array.from({ length: DIM }, (_, j) => weight[j * 2 + c]!);
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, j) => s + x * b[j]!, 0);
  assert.ok(Math.abs(Math.abs(dot(column(0), u)) - 1) < 1e-3, 'first component along u');
  assert.ok(Math.abs(Math.abs(dot(column(1), v)) - 1) < 1e-3, 'second component along v');
  assert.ok(Math.abs(dot(column(0), column(1))) < 1e-4);
  // Variances: the sample variances of 2a and b (randomVectors' coordinates are uniform or Gaussian: measure them).
  const variance = (f: (i: number) => number) => {
    let s = 0;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      s += f(i);
      ss += f(i) ** 2;
    }
    return ss / n - (s / n) ** 2;
  };
  const va = variance((i) => 2 * coefficients[i * 3]!);
  const vb = variance((i) => coefficients[i * 3 + 1]!);
  assert.ok(Math.abs(eigenvalues[0]! - va) < 0.02 * va, `${eigenvalues[0]} vs ${va}`);
  assert.ok(Math.abs(eigenvalues[1]! - vb) < 0.02 * vb, `${eigenvalues[1]} vs ${vb}`);
  // The whole variance: the two directions' plus the tiny noise's (1e-6 per row).
  const kept = eigenvalues[0]! + eigenvalues[1]!;
  assert.ok(Math.abs(totalVariance - kept) < 1e-4 * kept, `total ${totalVariance} vs ${kept}`);
  // The rows' mean projects to 0: bias = -mean W.
  const rowMean = Float32Array.from({ length: DIM }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += data[i * DIM + j]!;
    return s / n;
  });
  for (let c = 0; c < 2; c++) assert.ok(Math.abs(dot(rowMean, column(c)) + bias[c]!) < 1e-3, `bias ${c}`);
  await assert.rejects(principalComponents(data, DIM, DIM + 1), (e: SidxError) => e.code === 'SIDX_ERR_INVALID_INPUT');
  await assert.rejects(principalComponents(data.subarray(0, DIM), DIM, 1), (e: SidxError) => e.code === 'SIDX_ERR_INVALID_INPUT');
});

test('principalComponents reports variances, not scatter sums, when FAISS fits a subsample (over 1000 x d rows)', async () => {
  // 2 dimensions, 3000 rows (FAISS keeps 2000): coordinate 0 with variance 9, coordinate 1 with variance 1.
  const n = 3000;
  const g = randomVectors(n, 2, 61);
  const data = Float32Array.from(g, (v, i) => (i % 2 === 0 ? 3 * v : v));
  const { eigenvalues, totalVariance } = await principalComponents(data, 2, 1);
  assert.ok(Math.abs(eigenvalues[0]! - 9) < 0.9, `${eigenvalues[0]}`);
  assert.ok(Math.abs(totalVariance - 10) < 1, `${totalVariance}`);
});
