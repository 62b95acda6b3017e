/** The cluster's KV registry (src/cluster/registry.ts) on a real `nats-server -js`. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { natsServerMissing, startNatsServer } from '../../src/bench/nats-server.ts';
import { ClusterRegistry, type ClusterJob, type ReplicaProgress } from '../../src/cluster/registry.ts';
import { tempDir } from '../helpers/paths.ts';

const model = (id: string, sha: string) => ({
  id, method: 'rqkmeans' as const, inputDim: 8, levels: 2, codebookSizes: [4, 4], metric: 'ip', path: `m/${id}`, sha256: sha, metrics: {},
});
const job = (id: string): ClusterJob => ({
  id, model: 'b', fromModel: 'a', batchSize: null, maxItemsPerSecond: null, mapping: false, status: 'running', error: null,
  createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
});

test('the KV registry: idempotent registration with versions, one active model, one running job, compare-and-set transitions, progress per replica, watch', { skip: natsServerMissing(), timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('sidx-registry-');
  const nats = await startNatsServer(join(dir, 'js'));
  const a = await connect({ servers: nats.url });
  const b = await connect({ servers: nats.url });
  t.after(async () => {
    await a.close();
    await b.close();
    nats.child.kill('SIGKILL');
    cleanup();
  });
  const r1 = await ClusterRegistry.open(a, 'sidx-registry-test', 1);
  const r2 = await ClusterRegistry.open(b, 'sidx-registry-test', 1); // a second node opens the same bucket
  const seen: string[] = [];
  const stop = await r2.watch((key) => seen.push(key));

  // Two nodes register at once: versions are distinct and consecutive; the same bundle again is not new.
  const [x, y] = await Promise.all([r1.register(model('a', '1'.repeat(64))), r2.register(model('b', '2'.repeat(64)))]);
  assert.ok(x.created && y.created);
  assert.deepEqual([x.model.version, y.model.version].sort(), [1, 2]);
  const again = await r2.register(model('a', '1'.repeat(64)));
  assert.equal(again.created, false);
  assert.equal(again.model.version, x.model.version);
  await assert.rejects(r1.register(model('a', '3'.repeat(64))), (e: any) => e.code === 'SIDX_ERR_INVALID_INPUT' && e.field === 'path');
  assert.deepEqual((await r2.models()).map((m) => m.id), x.model.version === 1 ? ['a', 'b'] : ['b', 'a']);
  assert.equal(await r1.model('c'), null);

  // The first active model is set once; a flip replaces it and marks the model activated.
  assert.equal(await r1.active(), null);
  assert.equal(await r1.setActive(x.model, null, true), true);
  assert.equal(await r2.setActive(y.model, null, true), false, 'only if none is active');
  assert.equal((await r2.active())!.model, 'a');
  await r2.setActive(y.model, 'j1');
  assert.deepEqual({ ...(await r1.active()), since: undefined }, { model: 'b', sha256: '2'.repeat(64), job: 'j1', since: undefined });
  assert.ok((await r1.model('b'))!.activatedAt, 'b was activated');

  // One running job at a time; transitions happen once whoever asks.
  await r1.createJob(job('j1'));
  await assert.rejects(r2.createJob(job('j2')), (e: any) => e.code === 'SIDX_ERR_CONFLICT');
  assert.equal(await r2.running(), 'j1');
  const [s1, s2] = await Promise.all([r1.transition('j1', ['running'], 'swapping'), r2.transition('j1', ['running'], 'swapping')]);
  assert.equal(s1!.status, 'swapping');
  assert.equal(s2!.status, 'swapping');
  assert.equal((await r1.transition('j1', ['running'], 'cancelled'))!.status, 'swapping', 'a cancel after the flip changes nothing');
  assert.equal(await r1.transition('nope', ['running'], 'cancelled'), null);
  await r1.transition('j1', ['swapping'], 'succeeded');
  await r1.release('j1');
  assert.equal(await r2.running(), null);
  await r2.createJob(job('j2'));

  // Progress: one key per shard replica.
  const p = (shard: number, replica: string): ReplicaProgress => ({
    job: 'j2', shard, replica, status: 'running', phase: 'encode', processed: 5, total: 10, itemsPerSecond: null, etaSeconds: null,
    stability: null, error: null, ready: false, swapped: false, updatedAt: new Date().toISOString(),
  });
  await r1.putProgress(p(0, 'a'));
  await r1.putProgress(p(0, 'b.x'));
  await r2.putProgress({ ...p(1, 'a'), ready: true });
  await r2.putProgress({ ...p(0, 'a'), processed: 10 });
  const progress = await r1.progress('j2');
  assert.deepEqual(progress.map((q) => [q.shard, q.replica, q.processed, q.ready]), [[0, 'a', 10, false], [0, 'b.x', 5, false], [1, 'a', 5, true]]);

  for (let i = 0; i < 50 && !seen.includes('progress.j2.1.a'); i++) await new Promise((r) => setTimeout(r, 20));
  stop();
  for (const key of ['model.a', 'model.b', 'active', 'running', 'job.j1', 'progress.j2.0.b_x']) assert.ok(seen.includes(key), key);
});
