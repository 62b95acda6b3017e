/**
 * The SID trie routes across a re-index: the target's trie grows while the job runs (and its deltas add up), the
 * swap moves the default model, a seq read from the old model gets a full snapshot, the retired model is refused.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 200;
const tmp = tempDir();
let svc: RunningService;
const vectors = randomMatrix(N, DIM, 5);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));
const text = (s: number[]) => s.join('-');

async function call(method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await svc.app.inject({ method, url, payload: payload as never });
  return { status: res.statusCode, body: res.json(), etag: res.headers.etag as string | undefined };
}

after(async () => {
  await svc?.close();
  tmp.cleanup();
});

test('SID trie of a re-index target, then of the new served model after the swap', async () => {
  const idA = (await writeTestBundle(join(tmp.dir, 'models', 'a'), { dim: DIM, levels: 2, codebookSize: 8, seed: 1 })).id;
  const idB = (await writeTestBundle(join(tmp.dir, 'models', 'b'), { dim: DIM, levels: 3, codebookSize: 4, seed: 2 })).id;
  svc = await startService(join(tmp.dir, 'data'), join(tmp.dir, 'models', 'a'), { maxBatch: 1000 }, { model: { registryDir: join(tmp.dir, 'models') } });
  const items = Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: emb(i) }));
  assert.equal((await call('POST', '/v1/items', { items })).status, 200);
  assert.equal((await call('POST', '/v1/models', { path: 'b' })).status, 201);
  const before = await call('GET', '/v1/sids/trie?format=json');
  assert.equal(before.body.model, idA);
  assert.equal((await call('GET', `/v1/sids/trie?model=${idB}`)).body.code, 'SIDX_ERR_NO_KEY_SPACE', 'registered, not yet a target');

  const started = await call('POST', '/v1/reindex', { model: idB, batchSize: 20, maxItemsPerSecond: 200 });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  let midway;
  for (;;) {
    midway = await call('GET', `/v1/sids/trie?model=${idB}&format=json`);
    if (midway.body.sids?.length > 0) break;
    await sleep(20);
  }
  assert.equal(midway.status, 200, JSON.stringify(midway.body));
  assert.equal(midway.body.model, idB);
  assert.equal(midway.body.levels, 3);
  assert.ok(midway.body.sids.every((s: number[]) => s.length === 3));
  const roots = (await call('POST', '/v1/sids/next', { prefixes: [[]], model: idB })).body.next[0];
  assert.deepEqual(roots.codes, [...new Set(midway.body.sids.map((s: number[]) => s[0]))].sort((a, b) => (a as number) - (b as number)));

  let job;
  do {
    await sleep(50);
    job = (await call('GET', `/v1/jobs/${started.body.id}`)).body;
  } while (job.status === 'running' || job.phase !== 'done');
  assert.equal(job.status, 'succeeded', JSON.stringify(job));

  // After the swap the default model is B; its trie is the set of the items' SIDs.
  const full = await call('GET', '/v1/sids/trie?format=json');
  assert.equal(full.body.model, idB);
  assert.notEqual(full.etag!.split('.')[0], before.etag!.split('.')[0], 'the ETag names the new model version');
  const sids = new Set<string>();
  for (let i = 0; i < N; i++) sids.add(text((await call('GET', `/v1/items/i${i}`)).body.sid));
  assert.deepEqual(full.body.sids.map(text).sort(), [...sids].sort());
  // A delta of the target from its midway snapshot leads to the same set.
  const delta = (await call('GET', `/v1/sids/trie?model=${idB}&format=json&since=${midway.body.seq}`)).body;
  assert.equal(delta.kind, 'delta');
  const set = new Set<string>(midway.body.sids.map(text));
  for (const r of delta.removed) assert.ok(set.delete(text(r)));
  for (const a of delta.added) set.add(text(a));
  assert.deepEqual([...set].sort(), [...sids].sort());
  // A bare seq read from model A, asked of the default model, gets a full snapshot; so does A's ETag value.
  assert.equal((await call('GET', `/v1/sids/trie?format=json&since=${before.body.seq}`)).body.kind, 'full');
  assert.equal((await call('GET', `/v1/sids/trie?format=json&since=${before.etag!.replaceAll('"', '')}`)).body.kind, 'full');
  assert.equal((await call('GET', `/v1/sids/trie?format=json&since=${full.body.seq}`)).body.kind, 'delta');
  const retired = await call('GET', `/v1/sids/trie?model=${idA}`);
  assert.equal(retired.status, 409);
  assert.equal(retired.body.code, 'SIDX_ERR_NO_KEY_SPACE');
});
