import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ivfLayout } from '../../src/eval/ivf-layout.ts';
import { VectorIndex, type Metric } from '../../src/vector/vector-index.ts';
import { gaussian, rng } from '../helpers/random.ts';

const DIM = 8;
const N = 3000;
const NLIST = 24;
const QUERIES = 40;

function ids(n: number): BigInt64Array {
  return BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
}

for (const metric of ['ip', 'l2'] as Metric[]) {
  test(`ivfLayout (${metric}): list sizes and centroids read back from the index give the vectors a k = n IVF search returns`, async () => {
    const g = gaussian(rng(metric === 'ip' ? 3 : 4));
    const items = Float32Array.from({ length: N * DIM }, () => g());
    const queries = Float32Array.from({ length: QUERIES * DIM }, () => g());
    const index = VectorIndex.create({ dim: DIM, metric, factory: `IVF${NLIST},Flat` });
    const quantizer = VectorIndex.create({ dim: DIM, metric, factory: 'Flat' });
    try {
      await index.train(items);
      index.add(items, ids(N));
      const { centroids, sizes } = await ivfLayout(index);
      assert.equal(centroids.length, NLIST * DIM);
      assert.equal(sizes.reduce((a, b) => a + b, 0), N);
      assert.ok(sizes.some((s) => s !== sizes[0]), 'lists differ in size (the test can tell them apart)');
      quantizer.add(centroids, ids(NLIST));
      const order = (await quantizer.search(queries, NLIST)).labels;
      for (const nprobe of [1, 2, 5, NLIST]) {
        index.setSearchParameter('nprobe', nprobe);
        const { labels } = await index.search(queries, N);
        for (let q = 0; q < QUERIES; q++) {
          let expected = 0;
          for (let p = 0; p < nprobe; p++) expected += sizes[Number(order[q * NLIST + p]!)]!;
          const found = labels.subarray(q * N, (q + 1) * N).filter((l) => l >= 0n).length;
          assert.equal(found, expected, `query ${q}, nprobe ${nprobe}`);
        }
      }
    } finally {
      index.close();
      quantizer.close();
    }
  });
}
