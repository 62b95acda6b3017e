/**
 * Re-index end to end, in process: register a second model, re-index while reading and writing, swap, drop; then
 * a cancelled re-index. Models differ in shape (2 x 8 vs 3 x 4 codes), so a SID from the wrong model shows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCatalog, CatalogInspector } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 300;
const NEW = 25;
const tmp = tempDir();
const dataDir = join(tmp.dir, 'data');
let svc: RunningService;
let idA = '';
let idB = '';
const vectors = randomMatrix(N + 4 * NEW, DIM, 42);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));

async function call(method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await svc.app.inject({ method, url, payload: payload as never });
  return { status: res.statusCode, body: res.json() };
}

async function upsert(from: number, to: number) {
  const items = Array.from({ length: to - from }, (_, k) => ({ id: `i${from + k}`, embedding: emb(from + k) }));
  const res = await call('POST', '/v1/items', { items });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Each sampled item is among the exact-SID candidates of its own embedding. */
async function assertRetrievable(ids: number[], what: string) {
  for (const i of ids) {
    const r = await call('POST', '/v1/retrieve', { embedding: emb(i), k: 1000, expand: 'none' });
    assert.equal(r.status, 200, what);
    assert.ok(r.body.items.some((it: { id: string }) => it.id === `i${i}`), `${what}: i${i} by its embedding (model ${r.body.model})`);
  }
}

async function waitJob(id: string, until: (job: Record<string, any>) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await call('GET', `/v1/jobs/${id}`)).body;
    if (until(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} stuck: ${JSON.stringify(job)}`);
    await sleep(20);
  }
}

before(async () => {
  idA = (await writeTestBundle(join(tmp.dir, 'models', 'a'), { dim: DIM, levels: 2, codebookSize: 8, seed: 1 })).id;
  idB = (await writeTestBundle(join(tmp.dir, 'models', 'b'), { dim: DIM, levels: 3, codebookSize: 4, seed: 2 })).id;
  svc = await startService(dataDir, join(tmp.dir, 'models', 'a'), { maxBatch: 1000 }, { model: { registryDir: join(tmp.dir, 'models') } });
  await upsert(0, N);
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('models: register validates, lists, activation of a non-empty catalog is refused', async () => {
  const listed = await call('GET', '/v1/models');
  assert.equal(listed.body.active, idA);
  assert.deepEqual(listed.body.models.map((m: { id: string }) => m.id), [idA]);
  // Existing and missing paths outside the models directory (also through a symlink) get the same answer.
  symlinkSync(tmp.dir, join(tmp.dir, 'models', 'escape'));
  const messages = new Set<string>();
  for (const path of ['../outside', 'missing', '/etc', '/no/such/dir', tmp.dir, join(tmp.dir, 'nothing'), '../models/../data', 'escape', 'escape/nothing']) {
    const bad = await call('POST', '/v1/models', { path });
    assert.equal(bad.status, 400, path);
    assert.equal(bad.body.code, 'SIDX_ERR_INVALID_INPUT');
    assert.equal(bad.body.field, 'path');
    messages.add(bad.body.message.replace(JSON.stringify(path), 'PATH'));
  }
  assert.deepEqual([...messages], [`no bundle directory PATH under the models directory ${join(tmp.dir, 'models')} (model.registryDir; paths are relative to it)`]);
  await writeTestBundle(join(tmp.dir, 'models', 'wide'), { dim: DIM * 2, levels: 2, codebookSize: 4, seed: 3 });
  assert.equal((await call('POST', '/v1/models', { path: 'wide' })).body.code, 'SIDX_ERR_DIMENSION');
  const reg = await call('POST', '/v1/models', { path: 'b' });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  assert.equal(reg.body.id, idB);
  assert.equal(reg.body.levels, 3);
  assert.equal(reg.body.status, 'registered');
  assert.equal((await call('POST', '/v1/models', { path: 'b' })).status, 200, 'registering again is idempotent');
  assert.deepEqual((await call('GET', '/v1/models?status=registered')).body.models.map((m: { id: string }) => m.id), [idB]);
  const activate = await call('POST', `/v1/models/${idB}/activate`);
  assert.equal(activate.status, 409);
  assert.equal(activate.body.code, 'SIDX_ERR_CONFLICT');
  assert.equal((await call('POST', '/v1/models/nope/activate')).body.code, 'SIDX_ERR_UNKNOWN_MODEL');
  assert.equal((await call('POST', '/v1/reindex', { model: idA })).status, 409, 'already active');
  assert.equal((await call('POST', '/v1/reindex', { model: 'nope' })).body.code, 'SIDX_ERR_UNKNOWN_MODEL');
  assert.equal((await call('GET', '/v1/jobs/nope')).status, 404);
});

test('re-index: serving continues, writes during the job land in both key spaces, swap, old key space dropped', async () => {
  const started = await call('POST', '/v1/reindex', { model: idB, batchSize: 40, maxItemsPerSecond: 120, mapping: true });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const jobId: string = started.body.id;
  assert.equal(started.body.status, 'running');
  assert.equal(started.body.fromModel, idA);
  assert.equal((await call('POST', '/v1/reindex', { model: idB })).status, 409, 'one re-index at a time');

  // During the job: reads keep answering from model A; writes go on (new items, re-upserts, deletes).
  for (let round = 0; round < 4; round++) {
    await assertRetrievable([round * 7 % N, (round * 13 + 5) % N], 'during the re-index');
    await upsert(N + round * NEW, N + (round + 1) * NEW); // new items (keys after the scan's end)
    await upsert(round * 70, round * 70 + 10); // re-upserts of items the scan may have passed
    if (round === 1) assert.equal((await call('POST', '/v1/items/delete', { ids: [`i${N - 1}`, `i${N - 2}`] })).body.deleted, 2);
  }
  const midway = (await call('GET', `/v1/jobs/${jobId}`)).body;
  assert.equal(midway.phase, 'encode', `the writes overlapped the encode phase (${JSON.stringify(midway)})`);
  assert.equal(midway.model, idB);
  assert.ok(midway.processed > 0 && midway.itemsPerSecond > 0 && midway.etaSeconds >= 0, JSON.stringify(midway));
  assert.ok(midway.total >= N, 'total counts the catalog');
  const done = await waitJob(jobId, (j) => j.status !== 'running');
  assert.equal(done.status, 'succeeded', JSON.stringify(done));
  assert.equal(done.phase, 'done');
  assert.equal(done.processed, done.total, 'a finished job keeps the count of its last phase (the drop: every item)');

  // After the swap everything is model B.
  const models = await call('GET', '/v1/models');
  assert.equal(models.body.active, idB);
  assert.equal(models.body.models.find((m: { id: string }) => m.id === idA).status, 'retired');
  assert.equal((await call('GET', '/readyz')).body.model, idB);
  const live = [...Array(N + 4 * NEW).keys()].filter((i) => i !== N - 1 && i !== N - 2);
  const encoded = await call('POST', '/v1/encode', { embeddings: live.map(emb) });
  assert.equal(encoded.body.model, idB);
  for (const [k, i] of live.entries()) {
    const item = await call('GET', `/v1/items/i${i}`);
    assert.equal(item.body.model, idB, `i${i}`);
    assert.deepEqual(item.body.sid, encoded.body.sids[k], `i${i} has its model-B SID`);
  }
  assert.equal((await call('GET', `/v1/items/i${N - 1}`)).status, 404);
  await assertRetrievable([0, 17, 250, N - 3, N + 3, N + 4 * NEW - 1], 'after the swap');

  // Stability report and mapping file.
  assert.ok(done.stability.compared >= N - 2, JSON.stringify(done.stability));
  assert.equal(done.stability.changed + done.stability.unchanged, done.stability.compared);
  assert.equal(done.stability.changed, done.stability.compared, 'a 2-level SID never equals a 3-level one');
  const map = readFileSync(done.mappingFile, 'utf8').trim().split('\n');
  assert.equal(map[0], 'id,old_sid,new_sid');
  assert.equal(map.length - 1, done.stability.compared + done.stability.missing);
  assert.match(map[1]!, /^i\d+,\d+-\d+,\d+-\d+-\d+$/);

  // The catalog holds model B only: every record promoted, no side SIDs, no model-A postings.
  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.sides, 0);
  assert.deepEqual([report.naturalOnly, report.postings], [true, live.length], 'one natural posting per item (posting index memory)');
  const inspector = CatalogInspector.open(join(dataDir, 'catalog'));
  const versions = new Set([...inspector.sids().values()].map((s) => s.model));
  await inspector.close();
  assert.deepEqual([...versions], [models.body.models.find((m: { id: string }) => m.id === idB).version]);
  const metrics = (await svc.app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(metrics, new RegExp(`sidx_job_processed_items\\{job="${jobId}",kind="reindex"\\} \\d+`));
  assert.match(metrics, /sidx_items_indexed_total\{source="reindex"\} \d+/);
});

test('re-index cancelled before the swap: the active model stays, the new key space is removed', async () => {
  const started = await call('POST', '/v1/reindex', { model: idA, batchSize: 10, maxItemsPerSecond: 200 });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const jobId: string = started.body.id;
  await waitJob(jobId, (j) => j.processed >= 40);
  await upsert(0, 5); // dual-written
  const cancelled = await call('POST', `/v1/jobs/${jobId}/cancel`);
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  assert.equal(cancelled.body.status, 'cancelled');
  assert.equal((await call('POST', `/v1/jobs/${jobId}/cancel`)).status, 409, 'cancelling twice');
  await upsert(5, 10); // single-written again
  await waitJob(jobId, (j) => j.phase === 'done');
  assert.equal((await call('GET', '/v1/models')).body.active, idB);
  await assertRetrievable([1, 7, 200], 'after the cancel');
  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.sides, 0, 'the cancelled key space is gone');
  assert.deepEqual([report.naturalOnly, report.postings], [true, report.items]);
});
