/**
 * encoder.inline through the API: once the pool's inline lane is open, a lone /v1/encode or /v1/retrieve starts no
 * encoder worker run; concurrent ones do; the answers are those of a service with the lane off.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { kPoolTestHooks } from '../../src/tokenizer/encoder-pool.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { fillItems } from '../helpers/retrieve-answers.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 32;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const queries = randomMatrix(8, DIM, 52);
after(() => tmp.cleanup());

const query = (q: number) => Array.from(queries.subarray(q * DIM, (q + 1) * DIM));
const encode = (svc: RunningService, q: number) => svc.app.inject({ method: 'POST', url: '/v1/encode', payload: { embeddings: [query(q)] } });
const retrieve = (svc: RunningService, q: number) => svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: query(q), k: 5, expand: 'hamming1' } });

test('a lone encode or retrieve runs on the inline lane; concurrent ones on the workers; the same answers either way', async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 8, seed: 6 });
  const dataDir = join(tmp.dir, 'data');
  const off = await startService(dataDir, modelDir, {}, { encoder: { inline: false } });
  await fillItems(off, randomMatrix(300, DIM, 51), DIM);
  const wantEncode: unknown[] = [];
  const wantRetrieve: unknown[] = [];
  for (let q = 0; q < 8; q++) {
    const [e, r] = [await encode(off, q), await retrieve(off, q)];
    assert.deepEqual([e.statusCode, r.statusCode], [200, 200], e.body + r.body);
    wantEncode.push(e.json());
    wantRetrieve.push(r.json().items);
  }
  assert.ok((wantRetrieve[0] as unknown[]).length > 0);
  await off.close();

  const svc = await startService(dataDir, modelDir, {}, { encoder: { inline: true } });
  try {
    const pool = svc.service[kServiceTestHooks].pool()[kPoolTestHooks];
    await encode(svc, 0); // the first call that asks opens the lane
    for (let i = 0; i < 200 && !pool.inlineFree(); i++) await sleep(10);
    assert.ok(pool.inlineFree(), 'the lane opened');
    const runs = pool.runs();
    for (let q = 0; q < 8; q++) {
      assert.deepEqual((await encode(svc, q)).json(), wantEncode[q], `encode ${q}`);
      assert.deepEqual((await retrieve(svc, q)).json().items, wantRetrieve[q], `retrieve ${q}`);
    }
    assert.equal(pool.runs(), runs, 'lone calls: no worker run');
    const concurrent = await Promise.all(Array.from({ length: 8 }, (_, q) => retrieve(svc, q)));
    assert.deepEqual(concurrent.map((r) => r.json().items), wantRetrieve);
    assert.ok(pool.runs() > runs, 'concurrent retrieves: worker runs');
  } finally {
    await svc.close();
  }
});
