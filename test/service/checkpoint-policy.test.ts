/**
 * When the service syncs the vector slot file (vectors.json records what it covers): every `storage.checkpointEvery`
 * changes, and no more often than `storage.checkpointGrowthPercent` of the index size. The sync runs in the
 * background (writers never wait for it): the test waits for it before reading vectors.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointThreshold } from '../../src/service/vector-state.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle } from '../helpers/service.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';

const DIM = 8;

test('checkpointThreshold: the larger of checkpointEvery and the growth share of the index', () => {
  assert.equal(checkpointThreshold({ checkpointEvery: 50_000, checkpointGrowthPercent: 10 }, 100_000), 50_000);
  assert.equal(checkpointThreshold({ checkpointEvery: 50_000, checkpointGrowthPercent: 10 }, 2_000_000), 200_000);
  assert.equal(checkpointThreshold({ checkpointEvery: 50_000, checkpointGrowthPercent: 0 }, 2_000_000), 50_000);
  assert.equal(checkpointThreshold({ checkpointEvery: 10, checkpointGrowthPercent: 50 }, 31), 16);
});

for (const growth of [0, 50]) {
  test(`upserts sync the vector slot file at the sizes the policy gives (checkpointEvery 10, growth ${growth}%)`, async () => {
    const tmp = tempDir();
    try {
      const modelDir = join(tmp.dir, 'model');
      await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 1 });
      const dataDir = join(tmp.dir, 'data');
      const svc = await startService(dataDir, modelDir, {}, { storage: { checkpointEvery: 10, checkpointGrowthPercent: growth } });
      const vectors = randomMatrix(60, DIM, 2);
      const checkpointed: number[] = [];
      try {
        for (let b = 0; b < 6; b++) {
          const items = Array.from({ length: 10 }, (_, i) => ({ id: `i${b * 10 + i}`, embedding: Array.from(vectors.subarray((b * 10 + i) * DIM, (b * 10 + i + 1) * DIM)) }));
          const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items } });
          assert.equal(res.statusCode, 200, res.body);
          await svc.service[kServiceTestHooks].vectorsIdle();
          checkpointed.push((JSON.parse(readFileSync(join(dataDir, 'vectors.json'), 'utf8')) as { ntotal: number }).ntotal);
        }
      } finally {
        await svc.close();
      }
      // growth 0: after every batch of 10. growth 50%: at 10 and 20 (threshold 10), then at 40 (20 changes >= 50% of 40);
      // at 60 the 20 changes since are under 50% of 60.
      assert.deepEqual(checkpointed, growth === 0 ? [10, 20, 30, 40, 50, 60] : [10, 20, 20, 40, 40, 40]);
    } finally {
      tmp.cleanup();
    }
  });
}
