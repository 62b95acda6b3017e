import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VectorIndex } from '../../src/vector/vector-index.ts';
import { randomMatrix } from '../helpers/random.ts';

test('setSearchParameter("nprobe") bounds how many vectors an IVF search scores; unknown names are coded errors', async () => {
  const dim = 8;
  const n = 2000;
  const x = randomMatrix(n, dim, 3);
  const index = VectorIndex.create({ dim, metric: 'ip', factory: 'IVF16,Flat' });
  try {
    await index.train(x);
    index.add(x, BigInt64Array.from({ length: n }, (_, i) => BigInt(i)));
    // With k = n, an IVF search returns every vector of the probed lists: their count is the work done.
    const scored = async (nprobe: number) => {
      index.setSearchParameter('nprobe', nprobe);
      const r = await index.search(x.subarray(0, dim), n);
      return r.labels.filter((l) => l >= 0n).length;
    };
    const one = await scored(1);
    assert.ok(one > 0 && one < n / 4, `nprobe 1 scored ${one}`);
    assert.equal(await scored(16), n);
    assert.throws(() => index.setSearchParameter('bogus', 1), { code: 'SIDX_ERR_VECTOR' });
    assert.throws(() => index.setSearchParameter('nprobe', Number.NaN), { code: 'SIDX_ERR_INVALID_INPUT' });
  } finally {
    index.close();
  }
  const flat = VectorIndex.create({ dim, metric: 'ip' });
  assert.throws(() => flat.setSearchParameter('nprobe', 2), { code: 'SIDX_ERR_VECTOR' });
  flat.close();
});
