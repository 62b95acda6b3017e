/**
 * A retrieve batch (and a single retrieve) through a cluster router that meets an active-model flip half done: the
 * router encodes with the new model while one shard still serves the old one, that shard refuses
 * (SIDX_ERR_MODEL_SWAP), the router encodes and asks again (src/cluster/router-reads.ts) until it has swapped, and the
 * answer is whole, from the new model only, and the one the same queries get once the flip is complete.
 *
 * How the window is held open, with real processes (a local `nats-server -js`, shards 0 and 1 with one replica each
 * and a router as `sidx serve` children) and real signals:
 *   1. Replica 0 is stopped (SIGSTOP) before the re-index starts: shard 0 has no replica in the job, so no flip.
 *   2. Replica 1 builds the target's key space and holds at its swap (ready); then it is stopped too.
 *   3. Replica 0 goes on (SIGCONT): it joins the job, builds, is ready; the router's coordinator switches the
 *      router's encoder to the target and puts `active`; replica 0 swaps. Replica 1, stopped, still serves the old
 *      model (it swaps only once it has read `active` again, a NATS round trip, and its job polled its swap gate).
 *   4. A batch and a single retrieve go to the router: encoded with the target, asked of both shards; replica 1's
 *      copies wait in its socket (the router waits up to cluster.requestTimeoutMs for an answer, and this test's own
 *      subscription to the shard's subjects sees that they were sent).
 *   5. Replica 1 goes on: it reads the queries before any answer to its registry read can arrive, so it refuses
 *      them (the old model), then swaps; the router asks again until it answers.
 * A stopped replica alone would make a missing shard (no answer within the timeout), not a refusal: the refusal
 * comes from waking it with the queries already in its socket, well within the router's wait.
 * The retries show in the router's sidx_router_swap_retries_total and as a second request on the shard's subject.
 * Skipped where nats-server is not installed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { natsServerMissing } from '../../src/bench/nats-server.ts';
import { queryBatchSubject, querySubject, shardOf } from '../../src/cluster/wire.ts';
import { b64, clusterDir, json, sleep, until } from '../helpers/cluster.ts';
import { randomMatrix } from '../helpers/random.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import { writeTestBundle } from '../helpers/service.ts';

const DIM = 32;
const N = 400;
const Q = 6;

type Answer = { model: string; items: Array<{ id: string; sid: number[] }>; partial?: boolean; missingShards?: number[]; timingsMs?: unknown };

/** An answer without its timings (the only part that differs between two asks of the same state). */
const untimed = ({ timingsMs: _t, ...rest }: Answer) => rest;

test('a retrieve batch that meets the active-model flip: a shard refuses the new model, the router asks again, the answer is whole and from the new model', { skip: natsServerMissing(), timeout: 150_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-flip-');
  const registry = join(dir, 'models');
  const from = await writeTestBundle(join(registry, 'from'), { dim: DIM, levels: 2, codebookSize: 16, seed: 3 });
  const to = await writeTestBundle(join(registry, 'to'), { dim: DIM, levels: 3, codebookSize: 16, seed: 7 });
  // The router waits up to 30 s for a shard (re-asks included): far longer than replica 1 is kept stopped below.
  const cluster = await start(join(registry, 'from'), { SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '30000', SIDX__MODEL__REGISTRY_DIR: registry });
  const [r0, r1] = await Promise.all([cluster.replica(0, 2, 'a'), cluster.replica(1, 2, 'a')]);
  const router = await cluster.serve(['--role', 'router', '--shard', '0/2'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });

  const vectors = randomMatrix(N, DIM, 11);
  const items = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, j) => ({ id: `i${lo + j}`, embedding: b64(vectors.subarray((lo + j) * DIM, (lo + j + 1) * DIM)) }));
  for (let lo = 0; lo < N; lo += 200) assert.equal((await json(`${router.url}/v1/items`, 'POST', { items: items(lo, lo + 200) })).status, 200);
  const held = async (s: ServerProcess) => (await json(`${s.url}/readyz`)).body.items as number;
  await until('both shards applied the writes', async () => (await held(r0)) + (await held(r1)) === N, 60_000);
  assert.ok((await held(r0)) > 0 && (await held(r1)) > 0, 'items on both shards');
  assert.equal((await json(`${router.url}/v1/models`, 'POST', { path: 'to' })).status, 201);

  const queries = randomMatrix(Q, DIM, 99);
  const query = (i: number) => ({ embedding: b64(queries.subarray(i * DIM, (i + 1) * DIM)), k: 10 });
  const batch = () => json(`${router.url}/v1/retrieve/batch`, 'POST', { queries: Array.from({ length: Q }, (_, i) => query(i)) });
  const single = () => json(`${router.url}/v1/retrieve`, 'POST', query(0));
  const before = await batch();
  assert.equal(before.status, 200, JSON.stringify(before.body));
  assert.ok(before.body.results.every((a: Answer) => a.model === from.id && a.items.every((it) => it.sid.length === 2)), 'the first model before the job');

  // The shard's query subjects as the router sends them (a plain subscription gets a copy of each): the model each
  // request was encoded with, in order.
  const nc = await connect({ servers: cluster.natsUrl });
  const seen = { batch: [] as string[], single: [] as string[] };
  nc.subscribe(queryBatchSubject(1), { callback: (_err, m) => void seen.batch.push(m.json<{ model: string }>().model) });
  nc.subscribe(querySubject(1), { callback: (_err, m) => void seen.single.push(m.json<{ model: string }>().model) });
  await nc.flush();
  const job = async (id: string) => (await json(`${router.url}/v1/jobs/${id}`)).body;
  let jobId = '';
  const tails = async () => `job: ${JSON.stringify(jobId ? await job(jobId) : null)}\n`
    + Object.entries({ r0, r1, router }).map(([name, p]) => `--- ${name}:\n${p.output().split('\n').slice(-25).join('\n')}`).join('\n');

  try {
    // 1-2: replica 0 stopped before the job; replica 1 builds the target and holds at its swap; then it is stopped.
    r0.child.kill('SIGSTOP');
    const started = await json(`${router.url}/v1/reindex`, 'POST', { model: to.id });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    jobId = started.body.id;
    const replica = async (shard: number) => (await job(jobId)).shards.find((s: { shard: number }) => s.shard === shard);
    await until('replica 1 ready to swap', async () => (await replica(1))?.ready === true, 60_000, tails);
    assert.equal((await json(`${router.url}/v1/models`)).body.active, from.id, 'no flip while shard 0 has no replica in the job');
    r1.child.kill('SIGSTOP');

    // 3: replica 0 joins, the flip happens, replica 0 swaps; replica 1 (stopped) still serves the first model.
    r0.child.kill('SIGCONT');
    await until('the flip, replica 0 swapped', async () => (await json(`${router.url}/v1/models`)).body.active === to.id
      && (await replica(0))?.swapped === true, 60_000, tails);
    assert.equal((await json(`${router.url}/readyz`)).body.model, to.id, 'the router encodes with the target');
    assert.equal((await replica(1)).swapped, false);

    // 4-5: the queries reach replica 1's socket while it is stopped; it refuses them when it goes on, then swaps.
    const batchAnswer = batch();
    const singleAnswer = single();
    await until('the router asked shard 1', async () => seen.batch.includes(to.id) && seen.single.includes(to.id), 30_000, tails);
    await sleep(200); // the server's copy to replica 1 leaves with the copy seen here; a margin for a loaded machine
    r1.child.kill('SIGCONT');
    const [b, s] = await Promise.all([batchAnswer, singleAnswer]);

    // Whole answers from the target only.
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.body.results.length, Q);
    for (const a of [...b.body.results, s.body] as Answer[]) {
      assert.equal(a.model, to.id);
      assert.equal(a.partial, undefined, `no shard missing: ${JSON.stringify(a.missingShards)}`);
      assert.equal(a.missingShards, undefined);
      assert.ok(a.items.length > 0);
      assert.ok(a.items.every((it) => it.sid.length === 3), 'every SID from the target (3 levels)');
    }
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.ok(b.body.results.some((a: Answer) => a.items.some((it) => shardOf(it.id, 2) === 1)), 'items from shard 1, the one that refused');
    // The router asked shard 1 again, with the target: it had refused.
    assert.ok(seen.batch.filter((m) => m === to.id).length >= 2, `batch requests to shard 1: ${JSON.stringify(seen.batch)}`);
    assert.ok(seen.single.filter((m) => m === to.id).length >= 2, `single requests to shard 1: ${JSON.stringify(seen.single)}`);
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    const retries = (route: string) => Number(metrics.match(new RegExp(`^sidx_router_swap_retries_total\\{route="${route}"\\} (\\d+)$`, 'm'))?.[1] ?? 0);
    assert.ok(retries('/v1/retrieve/batch') >= 1, `batch retries counted:\n${metrics.split('\n').filter((l) => l.includes('swap_retries')).join('\n')}`);
    assert.ok(retries('/v1/retrieve') >= 1, 'single retrieve retries counted');

    // The same queries once the flip is complete answer the same.
    await until('the job succeeded', async () => (await job(jobId)).status === 'succeeded', 60_000, tails);
    const [after, afterSingle] = await Promise.all([batch(), single()]);
    assert.deepEqual(after.body.results.map(untimed), b.body.results.map(untimed));
    assert.deepEqual(untimed(afterSingle.body), untimed(s.body));
    assert.deepEqual(untimed(s.body), untimed(b.body.results[0]), 'query 0 alone and in the batch');
  } finally {
    for (const p of [r0, r1]) p.child.kill('SIGCONT'); // a failed wait must not leave a stopped process behind
    await nc.close();
  }
});
