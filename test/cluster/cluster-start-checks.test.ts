/**
 * What a cluster node checks at start. The shard count is the cluster's, recorded by its first node: a router or
 * shard started with another count (a router without --shard has 1) is refused before it logs or follows a write,
 * saying which count to use. A second live replica under a replica's name is refused. A replica answers nothing
 * (and is not ready) before it has applied its shard's log as it stood at its start. Real processes: a local
 * `nats-server -js` and `sidx serve` children. Skipped where nats-server is not installed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { natsServerMissing } from '../../src/bench/nats-server.ts';
import { ClusterRegistry } from '../../src/cluster/registry.ts';
import { b64, clusterDir, json } from '../helpers/cluster.ts';
import { randomMatrix } from '../helpers/random.ts';
import { writeTestBundle } from '../helpers/service.ts';

test('a node started with another shard count than the cluster\'s is refused, naming the count', { skip: natsServerMissing(), timeout: 120_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-shards-');
  await writeTestBundle(join(dir, 'm'), { dim: 8, levels: 2, codebookSize: 8, seed: 4 });
  const cluster = await start(join(dir, 'm'), {});
  await Promise.all([cluster.replica(0, 2, 'a'), cluster.replica(1, 2, 'a')]);

  const refused = async (args: string[], node: string, count: number) => {
    await assert.rejects(cluster.serve(args), (err: Error) => {
      assert.match(err.message, /exited with 1 before it was ready/);
      assert.match(err.message, new RegExp(`${node} was started with ${count} shard\\(s\\), but the cluster of registry bucket sidx-registry has 2 `
        + String.raw`\(recorded by its first node\): start it with --shard I/2 \(SIDX__CLUSTER__SHARDS=2\)`));
      assert.match(err.message, /\[SIDX_ERR_CONFIG\]/);
      return true;
    });
  };
  await refused(['--role', 'router'], 'this router', 1);
  await refused(['--role', 'router', '--shard', '0/3'], 'this router', 3);
  await refused(['--data-dir', join(dir, 'shard2a'), '--role', 'shard', '--shard', '2/3', '--replica', 'a'], 'shard 2', 3);
  const router = await cluster.serve(['--role', 'router', '--shard', '0/2']);
  assert.equal((await fetch(`${router.url}/readyz`)).status, 200);

  // A cluster from before the count was recorded: its write log says how many shards it has at least.
  const vectors = randomMatrix(40, 8, 5);
  const items = Array.from({ length: 40 }, (_, i) => ({ id: `x${i}`, embedding: b64(vectors.subarray(i * 8, (i + 1) * 8)) }));
  assert.equal((await json(`${router.url}/v1/items`, 'POST', { items })).status, 200); // 40 ids: both shards get some
  const { connect } = await import('@nats-io/transport-node');
  const nc = await connect({ servers: cluster.natsUrl });
  try {
    await (await ClusterRegistry.open(nc, 'sidx-registry', 1)).kv.delete('shards');
  } finally {
    await nc.close();
  }
  await assert.rejects(cluster.serve(['--role', 'router']), (err: Error) => {
    assert.match(err.message, /this router was started with 1 shard\(s\), but the write log holds writes for 2 \(shards 0\.\.1\): start it with the cluster's count/);
    return true;
  });
  await cluster.serve(['--role', 'router', '--shard', '0/2']); // and records 2 again
});

test('the first nodes to record the shard count at once agree on one of them', { skip: natsServerMissing(), timeout: 60_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-shards-race-');
  const cluster = await start(join(dir, 'unused'), {});
  const { connect } = await import('@nats-io/transport-node');
  const [a, b] = await Promise.all([connect({ servers: cluster.natsUrl }), connect({ servers: cluster.natsUrl })]);
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const [r1, r2] = await Promise.all([ClusterRegistry.open(a, 'race', 1), ClusterRegistry.open(b, 'race', 1)]);
  const none = async () => 0; // an empty write log
  const outcomes = await Promise.allSettled([r1.agreeShards(3, 'node a', none), r2.agreeShards(4, 'node b', none)]);
  assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
  const winner = outcomes[0]!.status === 'fulfilled' ? 3 : 4;
  await r2.agreeShards(winner, 'a later node', none);
  await assert.rejects(r1.agreeShards(winner + 1, 'another', none), (e: { code?: string; field?: string }) => e.code === 'SIDX_ERR_CONFIG' && e.field === 'cluster.shards');
});

test('a second live replica under a shard replica\'s name is refused; after that replica dies (kill -9) its name starts again', { skip: natsServerMissing(), timeout: 120_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-replica-name-');
  await writeTestBundle(join(dir, 'm'), { dim: 8, levels: 2, codebookSize: 8, seed: 4 });
  const cluster = await start(join(dir, 'm'), {});
  const first = await cluster.replica(0, 1, 'a');
  const namesake = ['--data-dir', join(dir, 'other'), '--role', 'shard', '--shard', '0/1', '--replica', 'a'];
  await assert.rejects(cluster.serve(namesake), (err: Error) => {
    assert.match(err.message, /replica "a" of shard 0 is already running \(consumer shard-0-a of stream SIDX_WRITES is being pulled from\): give each replica of a shard a name of its own \(--replica, SIDX__CLUSTER__REPLICA; the default is the host name\) \[SIDX_ERR_CONFIG\]/);
    return true;
  });
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  const again = await cluster.serve(namesake);
  assert.equal((await fetch(`${again.url}/readyz`)).status, 200);
});

test('a replica started behind its shard\'s log is ready only once it has applied it', { skip: natsServerMissing(), timeout: 180_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-catch-up-');
  await writeTestBundle(join(dir, 'm'), { dim: 8, levels: 2, codebookSize: 8, seed: 4 });
  const cluster = await start(join(dir, 'm'), {});
  const a = await cluster.replica(0, 1, 'a');
  const router = await cluster.serve(['--role', 'router', '--shard', '0/1'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });
  // Many small messages, each one LMDB transaction on a replica: a catch-up that takes a while.
  const MESSAGES = 150;
  const vectors = randomMatrix(MESSAGES * 2, 8, 9);
  for (let m = 0; m < MESSAGES; m++) {
    const items = [0, 1].map((j) => ({ id: `i${m}-${j}`, embedding: b64(vectors.subarray((2 * m + j) * 8, (2 * m + j + 1) * 8)) }));
    assert.equal((await json(`${router.url}/v1/items`, 'POST', { items })).status, 200);
  }
  assert.equal((await json(`${a.url}/readyz`)).body.items, MESSAGES * 2);
  const b = await cluster.replica(0, 1, 'b'); // an empty data directory: the whole log to apply
  const ready = await json(`${b.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(ready.body.items, MESSAGES * 2, 'ready with every item of the log');
  assert.match(b.output(), /cluster: shard 0 caught up to seq \d+ in [\d.]+ s/);
});

test('a write-log message that is not a write is skipped with a warning, and the writes after it apply', { skip: natsServerMissing(), timeout: 120_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-garbage-');
  await writeTestBundle(join(dir, 'm'), { dim: 8, levels: 2, codebookSize: 8, seed: 4 });
  const cluster = await start(join(dir, 'm'), { SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '10000' });
  const shard = await cluster.replica(0, 1, 'a');
  const router = await cluster.serve(['--role', 'router', '--shard', '0/1'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: cluster.natsUrl });
  try {
    await jetstream(nc).publish('sidx.writes.0', new TextEncoder().encode('not json'));
  } finally {
    await nc.close();
  }
  const v = randomMatrix(1, 8, 6);
  const res = await json(`${router.url}/v1/items`, 'POST', { items: [{ id: 'after', embedding: b64(v) }] });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((await json(`${shard.url}/v1/items/after`)).status, 200);
  assert.match(shard.output(), /write log seq \d+ is not a write message \([^)]*\); skipped/);
});
