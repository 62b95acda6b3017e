/**
 * vectors.rerankOffThread (f32, sq8): the rerank's reads and math on the libuv pool give the answers of the synchronous
 * rerank, and concurrent retrieves, each with its own candidate set across the await, do not mix their candidates;
 * one whose items are rewritten while it is in flight scores them as they are when its rerank resolves. A lone
 * retrieve shares its rows between the event loop and one pool thread (scoreShared), unless the last requests came
 * over several client connections: then the whole rerank hops (scoreAsync).
 */
import { after, test } from 'node:test';
import { Agent, request } from 'node:http';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { fillItems, topAnswers } from '../helpers/retrieve-answers.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';

const DIM = 32;
const N = 1200;
const K = 10;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const vectors = randomMatrix(N, DIM, 41);
const queries = randomMatrix(24, DIM, 42);
after(() => tmp.cleanup());

/** Counts the calls of the service's off-thread scoring (calls) and of the shared one (shared). */
function countScoreAsync(svc: RunningService): { calls: number; shared: number } {
  const store = svc.service[kServiceTestHooks].vectors();
  const scoreAsync = store.scoreAsync!.bind(store);
  const scoreShared = store.scoreShared!.bind(store);
  const counter = { calls: 0, shared: 0 };
  store.scoreAsync = (...args) => {
    counter.calls++;
    return scoreAsync(...args);
  };
  store.scoreShared = (...args) => {
    counter.shared++;
    return scoreShared(...args);
  };
  return counter;
}

test('off the event loop or on it, the same answers; 24 concurrent retrieves equal the sequential ones', async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 8, seed: 5 });
  const dataDir = join(tmp.dir, 'data');
  const onLoop = await startService(dataDir, modelDir, {}, { vectors: { storage: 'f32', rerankOffThread: false } });
  await fillItems(onLoop, vectors, DIM);
  const want = await topAnswers(onLoop, queries, DIM, K, 3 * K);
  await onLoop.close();

  const svc = await startService(dataDir, modelDir, {}, { vectors: { storage: 'f32', rerankOffThread: true } });
  const offThread = countScoreAsync(svc);
  try {
    assert.deepEqual(await topAnswers(svc, queries, DIM, K, 3 * K), want);
    assert.equal(offThread.calls, 0, 'a lone retrieve does not hop whole');
    assert.equal(offThread.shared, queries.length / DIM, 'each lone retrieve shares its rows with a pool thread');
    const concurrent = await Promise.all(Array.from({ length: 24 }, (_, q) => svc.app.inject({
      method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), k: K, expand: 'hamming1' },
    })));
    assert.deepEqual(concurrent.map((r) => r.json().items.map((it: { id: string; score: number }) => ({ id: it.id, score: it.score }))), want);
    assert.ok(offThread.calls >= 12, `concurrent retrieves score off the event loop (${offThread.calls} of 24 did)`);

    // Rewrites racing the rerank: every item of query 0's answer moves to the query's own vector (a new row each).
    const query = Array.from(queries.subarray(0, DIM));
    const moved = want[0]!.map((it) => it.id);
    const [racing] = await Promise.all([
      svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: query, k: K, expand: 'hamming1' } }),
      svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: moved.map((id) => ({ id, embedding: query })) } }),
    ]);
    assert.equal(racing.statusCode, 200);
    const self = query.reduce((s, x) => s + x * x, 0);
    for (const it of racing.json().items as Array<{ id: string; score: number }>) {
      if (!moved.includes(it.id)) continue;
      const before = want[0]!.find((w) => w.id === it.id)!.score;
      assert.ok(Math.abs(it.score - self) < 1e-3 || Math.abs(it.score - before) < 1e-5, `${it.id}: the old or the new vector's score, not a mix (${it.score})`);
    }
  } finally {
    await svc.close();
  }
});

test('sq8: concurrent retrieves score their codes and re-score the best off the event loop, with the answers of the event loop', async () => {
  const dataDir = join(tmp.dir, 'data-sq8');
  const sq8 = { storage: 'sq8' as const, trainSize: 500, rescore: 20 };
  const onLoop = await startService(dataDir, modelDir, {}, { vectors: { ...sq8, rerankOffThread: false } });
  await fillItems(onLoop, vectors, DIM);
  const ask = (svc: RunningService, q: number) => svc.app.inject({
    method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), k: K, expand: 'hamming1' },
  });
  const answers = async (svc: RunningService) => (await Promise.all(Array.from({ length: 24 }, (_, q) => ask(svc, q))))
    .map((r) => r.json().items.map((it: { id: string; score: number }) => ({ id: it.id, score: it.score })));
  const want = await answers(onLoop);
  await onLoop.close();

  const svc = await startService(dataDir, modelDir, {}, { vectors: { ...sq8, rerankOffThread: true } });
  try {
    const store = svc.service[kServiceTestHooks].vectors();
    assert.equal(store.scoreShared, undefined, 'sq8 keeps a lone retrieve on the event loop');
    // A lone one ranks there in one native call (rank), with the answer a loaded server gives (below).
    const rank = store.rank!.bind(store);
    let lone = 0;
    store.rank = (...args) => {
      lone++;
      return rank(...args);
    };
    assert.deepEqual((await ask(svc, 0)).json().items.map((it: { id: string; score: number }) => ({ id: it.id, score: it.score })), want[0]);
    assert.equal(lone, 1, 'the lone retrieve ranked natively on the event loop');
    // Under load sq8 scores and ranks on the pool thread (rankAsync): the same answers as the event loop's.
    const rankAsync = store.rankAsync!.bind(store);
    let calls = 0;
    let ranked = 0;
    store.rankAsync = async (...args) => {
      calls++;
      const out = await rankAsync(...args);
      if (out.top) ranked++;
      return out;
    };
    assert.deepEqual(await answers(svc), want);
    assert.ok(calls >= 12, `concurrent retrieves score off the event loop (${calls} of 24 did)`);
    assert.equal(ranked, calls, 'each ranked on the pool thread');
  } finally {
    await svc.close();
  }
});

test('over a real port: one client on the event loop, also when it takes turns on two connections (as fetch does); three clients taking turns hop', async () => {
  const svc = await startService(join(tmp.dir, 'data'), modelDir, {}, { vectors: { storage: 'f32', rerankOffThread: true } });
  const offThread = countScoreAsync(svc);
  const agents = [0, 1, 2].map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    const url = await svc.app.listen({ port: 0, host: '127.0.0.1' });
    const post = (agent: Agent, q: number) => new Promise<number>((resolve, reject) => {
      const req = request(`${url}/v1/retrieve`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ embedding: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), k: K, expand: 'hamming1' }));
    });
    const turns = async (clients: number, n: number) => {
      for (let q = 0; q < n; q++) assert.equal(await post(agents[q % clients]!, q % 24), 200);
    };
    await turns(1, 6);
    await turns(2, 12);
    assert.equal(offThread.calls, 0, 'one client, on one connection or taking turns on two: no rerank hops whole');
    assert.equal(offThread.shared, 18, 'each shares its rows with a pool thread');
    assert.equal(svc.app.severalClients(), false);

    await turns(3, 12);
    assert.ok(offThread.calls >= 10, `three connections taking turns: the reranks hop (${offThread.calls} of 12)`);

    while (svc.app.severalClients()) await new Promise((r) => setTimeout(r, 20));
    const before = offThread.calls;
    await turns(1, 6);
    assert.equal(offThread.calls, before, 'one client again: shared, not hopping');
  } finally {
    for (const agent of agents) agent.destroy();
    await svc.close();
  }
});
