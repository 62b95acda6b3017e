/**
 * The service's live posting index end to end: writes over HTTP are visible to the next retrieve, the re-index
 * target's index serves after the swap, and /v1/retrieve answers as with storage.postingIndex "lmdb".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { PostingIndex } from '../../src/service/posting-index.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 400;
const vectors = randomMatrix(N, DIM, 5);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));

async function call(svc: RunningService, method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await svc.app.inject({ method, url, payload: payload as never });
  assert.ok(res.statusCode < 300, `${method} ${url}: ${res.body}`);
  return res.json();
}

/** Every answer but its timings, for the queries the test asks. */
async function answers(svc: RunningService): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < N; i += 7) {
    for (const body of [{ embedding: emb(i), k: 20 }, { embedding: emb(i), k: 50, expand: 'hamming1', maxCandidates: 60 }, { embedding: emb(i), expand: 'none', k: 5 }]) {
      const { timingsMs: _t, ...rest } = await call(svc, 'POST', '/v1/retrieve', body);
      out.push(rest);
    }
  }
  return out;
}

test('live posting index: read-your-writes, re-index swap, same answers as the LMDB scans', async () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const a = await writeTestBundle(join(tmp.dir, 'models', 'a'), { dim: DIM, levels: 3, codebookSize: 4, seed: 1 });
  const b = await writeTestBundle(join(tmp.dir, 'models', 'b'), { dim: DIM, levels: 2, codebookSize: 8, seed: 2 });
  const open = (postingIndex: 'memory' | 'lmdb') => startService(dataDir, join(tmp.dir, 'models', 'a'), {}, {
    model: { registryDir: join(tmp.dir, 'models') }, storage: { postingIndex },
  });
  let svc = await open('memory');
  try {
    const index = (model: string): PostingIndex | undefined => {
      const version = svc.service.listModels().find((m) => m.id === model)!.version;
      return svc.service[kServiceTestHooks].postings().index(version);
    };
    const served = index(a.id)!;
    assert.equal(served.count, 0);
    for (let i = 0; i < N; i += 100) {
      const up = await call(svc, 'POST', '/v1/items', { items: Array.from({ length: 100 }, (_, j) => ({ id: `i${i + j}`, embedding: emb(i + j) })) });
      // Acknowledged, so retrievable by its SID at once.
      const got = await call(svc, 'POST', '/v1/retrieve', { sids: [up.items[99].sid], expand: 'none', k: 1000 });
      assert.ok(got.items.some((it: { id: string }) => it.id === `i${i + 99}`));
    }
    assert.equal(served.count, N);
    await call(svc, 'POST', '/v1/items/delete', { ids: ['i0', 'i1'] });
    const gone = await call(svc, 'POST', '/v1/retrieve', { embedding: emb(0), expand: 'none', k: 1000 });
    assert.ok(!gone.items.some((it: { id: string }) => it.id === 'i0'), 'a deleted item is not retrieved');

    // Re-index to model b: its index is built when the job starts, follows the batches and serves after the swap.
    await call(svc, 'POST', '/v1/models', { path: 'b' });
    const job = await call(svc, 'POST', '/v1/reindex', { model: b.id, batchSize: 50 });
    await call(svc, 'POST', '/v1/items', { items: [{ id: 'during', embedding: emb(3) }] });
    for (let t = 0; (await call(svc, 'GET', `/v1/jobs/${job.id}`)).phase !== 'done'; t++) {
      assert.ok(t < 3000, 'the re-index finishes');
      await sleep(10);
    }
    assert.equal(svc.service.model.id, b.id);
    assert.equal(index(a.id), undefined, 'the old key space is no longer tracked');
    const target = index(b.id)!;
    assert.equal(target.count, svc.service.readiness().items);
    const before = await answers(svc);
    await svc.close();
    svc = await open('lmdb');
    assert.equal(index(b.id), undefined);
    assert.deepEqual(await answers(svc), before, 'same answers from the LMDB scans');
  } finally {
    await svc.close();
    tmp.cleanup();
  }
});
