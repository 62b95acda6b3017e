/**
 * The re-index drop phase lets requests through (issue 14): over a real loopback port, /healthz and /v1/retrieve
 * answer while the old key space is being removed, and a restart that finds the job in its drop phase is ready
 * (and answering) before the drop ends, which carries on in the background. Ordering only, no timings.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 3000;
const tmp = tempDir();
after(() => tmp.cleanup());
const models = join(tmp.dir, 'models');
const dataDir = join(tmp.dir, 'data');
const vectors = randomMatrix(N, DIM, 11);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));
let jobId = '';
let idB = '';

async function listen(svc: RunningService): Promise<string> {
  await svc.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(svc.app.server.address() as { port: number }).port}`;
}

const open = () => startService(dataDir, join(models, 'a'), { maxBatch: N }, { model: { registryDir: models } });
const phase = (svc: RunningService) => svc.service.getJob(jobId).phase;

/** Sends /healthz and /v1/retrieve one after another while the job is in its drop phase; counts those answered before it ended. */
async function answeredDuringDrop(svc: RunningService, base: string, enough: number): Promise<number> {
  let answered = 0;
  for (let q = 0; answered < enough && phase(svc) === 'drop'; q++) {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const retrieved = await fetch(`${base}/v1/retrieve`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ embedding: emb(q), k: 5 }),
    });
    assert.equal(retrieved.status, 200, await retrieved.text());
    if (phase(svc) === 'drop') answered++;
  }
  return answered;
}

test('requests are answered while the drop phase runs; a shutdown stops it at a batch boundary', async () => {
  await writeTestBundle(join(models, 'a'), { dim: DIM, levels: 2, codebookSize: 8, seed: 1 });
  idB = (await writeTestBundle(join(models, 'b'), { dim: DIM, levels: 3, codebookSize: 4, seed: 2 })).id;
  const svc = await open();
  try {
    const base = await listen(svc);
    const post = (url: string, body: unknown) => svc.app.inject({ method: 'POST', url, payload: body as never });
    assert.equal((await post('/v1/items', { items: Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: emb(i) })) })).statusCode, 200);
    assert.equal((await post('/v1/models', { path: 'b' })).statusCode, 201);
    const started = await post('/v1/reindex', { model: idB, batchSize: 1000 });
    assert.equal(started.statusCode, 202, started.body);
    jobId = started.json().id;
    // A timer turn comes between two drop batches: the phase is seen (before the fix it ran to its end in one go).
    while (phase(svc) !== 'drop' && phase(svc) !== 'done') await sleep(1);
    assert.equal(phase(svc), 'drop', 'the drop phase was seen from a timer');
    assert.equal(await answeredDuringDrop(svc, base, 3), 3, 'requests answered before the drop ended');
  } finally {
    await svc.close();
  }
});

test('a restart in the drop phase is ready before the drop ends; the drop completes in the background', async () => {
  const svc = await open();
  try {
    assert.equal(phase(svc), 'drop', 'open returned with the drop still to do');
    const base = await listen(svc);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await ready.json()).model, idB);
    assert.ok(await answeredDuringDrop(svc, base, 2) >= 1, 'requests answered while the resumed drop runs');
    while (svc.service.getJob(jobId).status === 'running') await sleep(10);
    const job = svc.service.getJob(jobId);
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    for (const i of [0, 1234, N - 1]) {
      const item = (await svc.app.inject({ method: 'GET', url: `/v1/items/i${i}` })).json();
      assert.equal(item.model, idB);
      assert.equal(item.sid.length, 3);
    }
  } finally {
    await svc.close();
  }
  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.sides, 0, 'the old key space is gone');
  assert.deepEqual([report.naturalOnly, report.postings], [true, N], 'one natural posting per item (posting index memory)');
});
