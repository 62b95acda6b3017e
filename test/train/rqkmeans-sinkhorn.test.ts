import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SinkhornAssigner } from '../../src/numeric/sinkhorn.ts';
import { gaussian, randomMatrix, rng } from '../helpers/random.ts';

const DIM = 4;

function squaredDistances(points: Float32Array, centroids: Float32Array, dim: number): Float64Array {
  const n = points.length / dim;
  const k = centroids.length / dim;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (points[i * dim + j]! - centroids[c * dim + j]!) ** 2;
      out[i * k + c] = s;
    }
  }
  return out;
}

/** FORGE's recipe written out plainly: z-score, shift to min 0, Q = exp(-eps Z), normalise columns then rows. */
function referenceSinkhorn(points: Float32Array, centroids: Float32Array, eps: number, iterations: number): Int32Array {
  const k = centroids.length / DIM;
  const d = squaredDistances(points, centroids, DIM);
  const n = d.length / k;
  let mean = 0;
  for (const v of d) mean += v / d.length;
  let variance = 0;
  for (const v of d) variance += (v - mean) ** 2 / d.length;
  const std = Math.sqrt(variance);
  const z = d.map((v) => (v - mean) / std);
  const min = Math.min(...z);
  const q = z.map((v) => Math.exp(-eps * (v - min)));
  for (let t = 0; t < iterations; t++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += q[i * k + c]!;
      for (let i = 0; i < n; i++) q[i * k + c]! /= s;
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += q[i * k + c]!;
      for (let c = 0; c < k; c++) q[i * k + c]! /= s;
    }
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (q[i * k + c]! > q[i * k + best]!) best = c;
    labels[i] = best;
  }
  return labels;
}

function nearest(points: Float32Array, centroids: Float32Array): Int32Array {
  const k = centroids.length / DIM;
  const d = squaredDistances(points, centroids, DIM);
  return Int32Array.from({ length: d.length / k }, (_, i) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (d[i * k + c]! < d[i * k + best]!) best = c;
    return best;
  });
}

function clusterSizes(labels: Int32Array, k: number): number[] {
  const sizes = new Array<number>(k).fill(0);
  for (const l of labels) sizes[l]!++;
  return sizes;
}

/** Most points near centroid 0: the nearest-centroid assignment is very uneven. */
function crowdedPoints(n: number, centroids: Float32Array, seed: number): Float32Array {
  const g = gaussian(rng(seed));
  const out = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    const c = i % 4 === 0 ? i % (centroids.length / DIM) : 0;
    for (let j = 0; j < DIM; j++) out[i * DIM + j] = centroids[c * DIM + j]! + 0.3 * g();
  }
  return out;
}

test('the ORT graph gives the labels of a plain float64 implementation of the recipe', async () => {
  const centroids = randomMatrix(6, DIM, 1, 2);
  const points = crowdedPoints(120, centroids, 2);
  for (const [eps, iterations] of [[1, 10], [5, 30], [20, 50]] as const) {
    const sinkhorn = await SinkhornAssigner.create(DIM, { epsilon: eps, iterations });
    try {
      const { labels, distances } = await sinkhorn.assign(points, centroids);
      assert.deepEqual(labels, referenceSinkhorn(points, centroids, eps, iterations), `eps ${eps}`);
      const d = squaredDistances(points, centroids, DIM);
      for (let i = 0; i < labels.length; i++) assert.ok(Math.abs(distances[i]! - d[i * 6 + labels[i]!]!) < 1e-3);
    } finally {
      await sinkhorn.close();
    }
  }
});

test('balanced labels spread crowded points far more evenly than the nearest centroid does', async () => {
  const k = 6;
  const centroids = randomMatrix(k, DIM, 3, 2);
  const points = crowdedPoints(600, centroids, 4);
  const sinkhorn = await SinkhornAssigner.create(DIM, { epsilon: 5, iterations: 50 });
  try {
    const balanced = clusterSizes((await sinkhorn.assign(points, centroids)).labels, k);
    const plain = clusterSizes(nearest(points, centroids), k);
    assert.ok(Math.max(...plain) > 400, `plain sizes ${plain}`);
    assert.ok(Math.max(...balanced) < 170 && Math.min(...balanced) > 40, `balanced sizes ${balanced}`);
  } finally {
    await sinkhorn.close();
  }
});

test('a huge eps is the nearest-centroid assignment, with no NaN from underflow', async () => {
  const centroids = randomMatrix(5, DIM, 5, 2);
  const points = randomMatrix(200, DIM, 6, 3);
  const sinkhorn = await SinkhornAssigner.create(DIM, { epsilon: 1e6, iterations: 5 });
  try {
    const { labels, distances } = await sinkhorn.assign(points, centroids);
    assert.deepEqual(labels, nearest(points, centroids));
    assert.ok(distances.every(Number.isFinite));
  } finally {
    await sinkhorn.close();
  }
});

test('large inputs run in row batches within the memory bound; empty input returns empty', async () => {
  const centroids = randomMatrix(4, DIM, 7);
  const sinkhorn = await SinkhornAssigner.create(DIM, { maxMatrixFloats: 100 });
  try {
    assert.equal(sinkhorn.batchRows(100, 4), 25);
    assert.equal(sinkhorn.batchRows(101, 4), 21); // 5 batches of at most 25 rows, as equal as possible
    const points = randomMatrix(101, DIM, 8);
    const { labels } = await sinkhorn.assign(points, centroids);
    assert.equal(labels.length, 101);
    assert.ok(labels.every((l) => l >= 0 && l < 4));
    const empty = await sinkhorn.assign(new Float32Array(0), centroids);
    assert.equal(empty.labels.length, 0);
  } finally {
    await sinkhorn.close();
  }
});
