import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SidxError } from '../../src/errors.ts';
import { assignNearest, kmeans } from '../../src/vector/vector-index.ts';
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
