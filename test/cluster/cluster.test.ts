/**
 * Cluster mode end to end with real processes: a local `nats-server -js`, a router and shard replicas as `sidx serve`
 * children, and a single node beside them on the same items. Skipped where nats-server is not installed
 * (scripts/setup.sh installs it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { natsServerMissing, startNatsServer } from '../../src/bench/nats-server.ts';
import { tempDir } from '../helpers/paths.ts';
import { dot, randomMatrix } from '../helpers/random.ts';
import { exited, startServer, waitReady, type ServerProcess } from '../helpers/server-process.ts';
import { writeTestBundle } from '../helpers/service.ts';

const natsMissing = natsServerMissing();
const DIM = 32;
const N = 1200;
const K = 10;

const json = async (url: string, method = 'GET', body?: unknown) => {
  const res = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: (await res.json()) as any };
};

const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

test('a 2-shard cluster on NATS JetStream: same recall as one node, kill -9 of a replica loses no acknowledged write, a restarted replica catches up, a dead shard makes answers partial', { skip: natsMissing, timeout: 240_000 }, async (t) => {
  const { dir, cleanup } = tempDir('sidx-cluster-');
  const procs: ChildProcess[] = [];
  t.after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    cleanup();
  });
  await writeTestBundle(join(dir, 'models', 'm'), { dim: DIM, levels: 2, codebookSize: 8, seed: 3 });
  const nats = await startNatsServer(join(dir, 'jetstream'));
  procs.push(nats.child);
  const model = ['--model', join(dir, 'models', 'm'), '--workers', '1'];
  // The router's wait for a shard (waitApplied, scatter-gather) is generous: 2 cores run 5 sidx processes and nats
  // here, and a CI run once saw a shard take over 1.5 s to apply a 100-item batch. Only the partial answer waits it out.
  const env = { SIDX__CLUSTER__URL: nats.url, SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '5000', SIDX__LIMITS__MAX_BATCH: '1000' };
  const serve = async (args: string[], extra: Record<string, string> = {}) => {
    const s = await startServer([...args, ...model], { ...env, ...extra });
    procs.push(s.child);
    await waitReady(s.url);
    return s;
  };
  const replica = (shard: number, name: string) => serve(['--data-dir', join(dir, `shard${shard}${name}`), '--role', 'shard', '--shard', `${shard}/2`, '--replica', name]);
  const shards: Record<string, ServerProcess> = {
    '0a': await replica(0, 'a'), '0b': await replica(0, 'b'), '1a': await replica(1, 'a'),
  };
  const router = await serve(['--role', 'router', '--shard', '0/2'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });
  const single = await serve(['--data-dir', join(dir, 'single')]);

  const vectors = randomMatrix(N, DIM, 11);
  const row = (i: number) => vectors.subarray(i * DIM, (i + 1) * DIM);
  const batch = (from: number, to: number) => ({ items: Array.from({ length: to - from }, (_, j) => ({ id: `i${from + j}`, embedding: b64(row(from + j)) })) });

  // Ingest through the router; replica 0b is killed with SIGKILL after the first batches and restarted later.
  const acked: string[] = [];
  for (let from = 0; from < N; from += 200) {
    if (from === 400) shards['0b']!.child.kill('SIGKILL');
    const res = await json(`${router.url}/v1/items`, 'POST', batch(from, Math.min(N, from + 200)));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.items.length, Math.min(200, N - from));
    acked.push(...res.body.items.map((it: { id: string }) => it.id));
    assert.equal((await json(`${single.url}/v1/items`, 'POST', batch(from, Math.min(N, from + 200)))).status, 200);
  }
  await exited(shards['0b']!.child);

  // Every acknowledged item is on its shard (waitApplied: applied before the answer), reachable through the router.
  const counts = async (s: ServerProcess) => (await json(`${s.url}/readyz`)).body.items as number;
  assert.equal((await counts(shards['0a']!)) + (await counts(shards['1a']!)), N, 'shard 0 + shard 1 hold every item once');
  for (const id of acked.filter((_, i) => i % 37 === 0)) assert.equal((await json(`${router.url}/v1/items/${id}`)).status, 200, id);
  // The router's /readyz reports what the shards hold (asked every 2 s).
  const until = Date.now() + 10_000;
  while ((await json(`${router.url}/readyz`)).body.items !== N && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  assert.equal((await json(`${router.url}/readyz`)).body.items, N);

  // Recall against exact top k: the cluster's merged answers are at least as good as the single node's.
  const exact = (q: Float32Array) => Array.from({ length: N }, (_, i) => i).sort((a, b) => dot(q, row(b)) - dot(q, row(a))).slice(0, K).map((i) => `i${i}`);
  const queries = randomMatrix(25, DIM, 99);
  let hitsCluster = 0;
  let hitsSingle = 0;
  for (let qi = 0; qi < 25; qi++) {
    const q = queries.subarray(qi * DIM, (qi + 1) * DIM);
    const truth = new Set(exact(q));
    const body = { embedding: b64(q), k: K };
    const c = await json(`${router.url}/v1/retrieve`, 'POST', body);
    const s = await json(`${single.url}/v1/retrieve`, 'POST', body);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.equal(c.body.partial, undefined, 'every shard answered (replica 0a for shard 0)');
    assert.equal(c.body.items.length, K);
    hitsCluster += c.body.items.filter((it: { id: string }) => truth.has(it.id)).length;
    hitsSingle += s.body.items.filter((it: { id: string }) => truth.has(it.id)).length;
  }
  assert.ok(hitsCluster >= hitsSingle, `cluster recall ${hitsCluster / 250} vs single node ${hitsSingle / 250}`);

  // POST /v1/retrieve/batch through the router: each answer is the router's single retrieve for that query.
  const batchQueries = [0, 1, 2].map((qi) => ({ embedding: b64(queries.subarray(qi * DIM, (qi + 1) * DIM)), k: K }));
  const batched = await json(`${router.url}/v1/retrieve/batch`, 'POST', { queries: batchQueries });
  assert.equal(batched.status, 200, JSON.stringify(batched.body));
  for (let qi = 0; qi < batchQueries.length; qi++) {
    const one = await json(`${router.url}/v1/retrieve`, 'POST', batchQueries[qi]);
    const ids = (a: { items: { id: string; score: number }[] }) => a.items.map((it) => [it.id, it.score]);
    assert.deepEqual(ids(batched.body.results[qi]), ids(one.body), `batch query ${qi}`);
  }
  const refused = await json(`${router.url}/v1/retrieve/batch`, 'POST', { queries: [batchQueries[0], { sids: [[0, 0]], beamWidth: 4 }] });
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.field, 'queries[1].beamWidth');

  // /v1/sids/next through the router: the shards' next codes merged, counts summed: the single node's answer.
  const prefixes = { prefixes: [[], [0], [3], [5, 1]] };
  const merged = await json(`${router.url}/v1/sids/next`, 'POST', prefixes);
  assert.equal(merged.status, 200, JSON.stringify(merged.body));
  assert.deepEqual(merged.body, (await json(`${single.url}/v1/sids/next`, 'POST', prefixes)).body);
  const binary = async (url: string) => Buffer.from(await (await fetch(`${url}/v1/sids/next`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/octet-stream' }, body: JSON.stringify(prefixes),
  })).arrayBuffer());
  assert.deepEqual(await binary(router.url), await binary(single.url), 'binary SIDN answers too');

  // The killed replica restarts on its data directory and catches up from the stream.
  shards['0b'] = await replica(0, 'b');
  const target = await counts(shards['0a']!);
  const deadline = Date.now() + 30_000;
  while ((await counts(shards['0b']!)) !== target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await counts(shards['0b']!), target, 'the restarted replica caught up');

  // Deletes go through the log too.
  assert.equal((await json(`${router.url}/v1/items/delete`, 'POST', { ids: ['i0', 'i1'] })).status, 200);
  assert.equal((await json(`${router.url}/v1/items/i0`)).status, 404);

  // Shard 1 with no live replica: answers are partial, in about the timeout, not a hang.
  shards['1a']!.child.kill('SIGKILL');
  await exited(shards['1a']!.child);
  const t0 = Date.now();
  const partial = await json(`${router.url}/v1/retrieve`, 'POST', { embedding: b64(queries.subarray(0, DIM)), k: K });
  assert.equal(partial.status, 200);
  assert.equal(partial.body.partial, true);
  assert.deepEqual(partial.body.missingShards, [1]);
  assert.ok(Date.now() - t0 < 20_000, 'answered after about the router\'s 5 s wait, not a hang');
  assert.equal((await json(`${router.url}/v1/sids/next`, 'POST', prefixes)).status, 503, 'next codes without a shard would be incomplete');
  assert.equal((await json(`${router.url}/v1/sids/trie`)).status, 503, 'a SID trie without a shard would be incomplete');
});
