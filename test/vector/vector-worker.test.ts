import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { VectorIndex } from '../../src/vector/vector-index.ts';
import { randomVectors } from './fixtures/data.ts';

const DIM = 8;

function runWorker(data: object): Promise<{ labels: BigInt64Array; distances: Float32Array; scores: Float32Array }> {
  const worker = new Worker(new URL('./fixtures/ts-worker-bootstrap.mjs', import.meta.url), {
    workerData: { ...data, entry: new URL('./fixtures/search-in-worker.ts', import.meta.url).href },
  });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

test('the addon loads and searches inside a worker thread, matching the main thread', async (t) => {
  const vectors = randomVectors(100, DIM, 51);
  const ids = BigInt64Array.from({ length: 100 }, (_, i) => BigInt(i) << 40n);
  const query = randomVectors(1, DIM, 52);
  const [fromWorker, fromWorker2] = await Promise.all([
    runWorker({ dim: DIM, vectors, ids, query }),
    runWorker({ dim: DIM, vectors, ids, query }),
  ]);

  const index = VectorIndex.create({ dim: DIM, metric: 'ip' });
  t.after(() => index.close());
  index.add(vectors, ids);
  const local = await index.search(query, 3);
  assert.deepEqual(fromWorker.labels, local.labels);
  assert.deepEqual(fromWorker.distances, local.distances);
  assert.deepEqual(fromWorker.scores, index.scoreSubset(query, ids));
  assert.deepEqual(fromWorker2.labels, local.labels);
});
