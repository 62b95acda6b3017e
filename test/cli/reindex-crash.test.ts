/**
 * A re-index survives kill -9 of a real `sidx serve`: killed during the encode phase, the job resumes at the next
 * start from its last committed batch, not from the beginning, serving carries on, and it completes with every
 * item on the new model. (A crash at the swap and during the drop: test/service/reindex-resume.test.ts.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { exited, startServer, waitReady, type ServerProcess } from '../helpers/server-process.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 1000;
const tmp = tempDir();
after(() => tmp.cleanup());
const vectors = randomMatrix(N, DIM, 77);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));

async function json(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

test('re-index killed with SIGKILL resumes from its last committed batch and completes', async () => {
  const models = join(tmp.dir, 'models');
  const dataDir = join(tmp.dir, 'data');
  await writeTestBundle(join(models, 'a'), { dim: DIM, levels: 2, codebookSize: 8, seed: 1 });
  const idB = (await writeTestBundle(join(models, 'b'), { dim: DIM, levels: 3, codebookSize: 4, seed: 2 })).id;
  const start = async () => {
    const s = await startServer(['--data-dir', dataDir, '--model', join(models, 'a')], { SIDX__MODEL__REGISTRY_DIR: models, SIDX__LIMITS__MAX_BATCH: '1000' });
    await waitReady(s.url);
    return s;
  };
  const kill = async (s: ServerProcess) => {
    s.child.kill('SIGKILL');
    await exited(s.child);
  };

  let server = await start();
  for (let from = 0; from < N; from += 500) {
    const items = Array.from({ length: 500 }, (_, k) => ({ id: `i${from + k}`, embedding: emb(from + k) }));
    assert.equal((await json(`${server.url}/v1/items`, 'POST', { items })).status, 200);
  }
  assert.equal((await json(`${server.url}/v1/models`, 'POST', { path: 'b' })).status, 201);
  const started = await json(`${server.url}/v1/reindex`, 'POST', { model: idB, batchSize: 25, maxItemsPerSecond: 600 });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const jobUrl = () => `${server.url}/v1/jobs/${started.body.id}`;

  let before;
  do {
    await sleep(20);
    before = (await json(jobUrl())).body;
  } while (before.phase === 'encode' && before.processed < 400);
  assert.equal(before.phase, 'encode', 'killed during the encode phase');
  await kill(server);

  server = await start();
  const resumed = (await json(jobUrl())).body;
  assert.equal(resumed.status, 'running');
  assert.ok(resumed.phase !== 'encode' || resumed.processed >= before.processed, `resumed at ${resumed.processed}, had ${before.processed}`);
  assert.match(server.output(), /reindex [0-9a-f-]+: resuming in phase encode after item key [1-9]\d*/);
  const read = await json(`${server.url}/v1/retrieve`, 'POST', { embedding: emb(3), k: 1000, expand: 'none' });
  assert.ok(read.body.items.some((it: { id: string }) => it.id === 'i3'), 'serving while the job resumes');

  let job;
  do {
    await sleep(20);
    job = (await json(jobUrl())).body;
  } while (job.status === 'running');
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.equal(job.stability.compared, N);

  const encoded = await json(`${server.url}/v1/encode`, 'POST', { embeddings: Array.from({ length: N }, (_, i) => emb(i)) });
  assert.equal(encoded.body.model, idB);
  for (let i = 0; i < N; i += 37) {
    const item = (await json(`${server.url}/v1/items/i${i}`)).body;
    assert.equal(item.model, idB);
    assert.deepEqual(item.sid, encoded.body.sids[i]);
  }
  server.child.kill('SIGTERM');
  assert.equal(await exited(server.child), 0, server.output());
  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.items, N);
  assert.equal(report.sides, 0);
  assert.deepEqual([report.naturalOnly, report.postings], [true, N], 'one natural posting per item (posting index memory)');
});
