/**
 * Re-index resume paths, in process and deterministic: a job stopped by a graceful shutdown carries on from its
 * cursor; a crash between the swap's LMDB commit and the registry update is settled by the catalog at the next
 * start, and the drop phase then encodes any item that has no SID in the new model yet.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Catalog } from '../../src/store/catalog.ts';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { twoModelService, type RunningService } from '../helpers/service.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 300;
const tmp = tempDir();
after(() => tmp.cleanup());
const vectors = randomMatrix(N, DIM, 5);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));

async function setup(name: string) {
  const { dataDir, idB, open } = await twoModelService(join(tmp.dir, name), DIM);
  const svc = await open();
  const call = async (s: RunningService, method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await s.app.inject({ method, url, payload: payload as never });
    return { status: res.statusCode, body: res.json() };
  };
  assert.equal((await call(svc, 'POST', '/v1/items', { items: Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: emb(i) })) })).status, 200);
  assert.equal((await call(svc, 'POST', '/v1/models', { path: 'b' })).status, 201);
  const job = (await call(svc, 'POST', '/v1/reindex', { model: idB, batchSize: 10, maxItemsPerSecond: 300 })).body;
  let seen;
  do {
    await sleep(10);
    seen = (await call(svc, 'GET', `/v1/jobs/${job.id}`)).body;
  } while (seen.processed < 40);
  await svc.close(); // the job stops at a batch boundary and stays running
  return { dataDir, idB, jobId: job.id as string, seen, open, call };
}

async function waitDone(call: (s: RunningService, m: 'GET', u: string) => Promise<{ body: any }>, svc: RunningService, jobId: string) {
  for (;;) {
    const job = (await call(svc, 'GET', `/v1/jobs/${jobId}`)).body;
    if (job.status !== 'running') return job;
    await sleep(10);
  }
}

async function assertAllOn(svc: RunningService, call: (s: RunningService, m: 'GET' | 'POST', u: string, p?: unknown) => Promise<{ body: any }>, idB: string, dataDir: string) {
  const encoded = (await call(svc, 'POST', '/v1/encode', { embeddings: Array.from({ length: N }, (_, i) => emb(i)) })).body;
  assert.equal(encoded.model, idB);
  for (let i = 0; i < N; i++) {
    const item = (await call(svc, 'GET', `/v1/items/i${i}`)).body;
    assert.equal(item.model, idB, `i${i}`);
    assert.deepEqual(item.sid, encoded.sids[i], `i${i}`);
  }
  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.sides, 0);
  assert.equal(report.postings, report.naturalOnly ? N : N * 3, 'one natural posting per item, or one per rotation');
}

test('a re-index stopped by a graceful shutdown resumes from its cursor at the next start', async () => {
  const { dataDir, idB, jobId, seen, open, call } = await setup('graceful');
  const svc = await open();
  try {
    const resumed = (await call(svc, 'GET', `/v1/jobs/${jobId}`)).body;
    assert.equal(resumed.status, 'running');
    assert.ok(resumed.phase !== 'encode' || resumed.processed >= seen.processed, `resumed at ${resumed.processed} after ${seen.processed}`);
    const done = await waitDone(call, svc, jobId);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    await assertAllOn(svc, call, idB, dataDir);
  } finally {
    await svc.close();
  }
});

test('a crash right after the swap committed in LMDB: the catalog decides at start, the drop completes, unencoded items are encoded', async () => {
  const { dataDir, idB, jobId, open, call } = await setup('swap');
  // The state a kill leaves between the catalog's swap commit and the registry update (here before the encode
  // phase had finished, so most items have no SID in B yet: the drop phase must encode them).
  const control = ControlPlane.open(join(dataDir, 'control.sqlite'));
  const versionB = control.getModel(idB)!.version;
  control.jobState.set(jobId, { phase: 'swap' });
  control.close();
  const catalog = Catalog.open(join(dataDir, 'catalog'));
  catalog.spaces.setActiveModel(versionB);
  await catalog.close();

  const svc = await open();
  try {
    assert.equal((await call(svc, 'GET', '/readyz')).body.model, idB, 'the catalog, not model.dir, decides what is served');
    const done = await waitDone(call, svc, jobId);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    const models = (await call(svc, 'GET', '/v1/models')).body;
    assert.equal(models.active, idB);
    assert.equal(models.models.find((m: { id: string }) => m.id === idB).status, 'active', 'the registry caught up');
    await assertAllOn(svc, call, idB, dataDir);
  } finally {
    await svc.close();
  }
});
