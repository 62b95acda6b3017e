import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { kPoolTestHooks } from '../../src/tokenizer/encoder-pool.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, upsertRows, writeBeamBundle, type RunningService } from '../helpers/service.ts';

// POST /v1/retrieve/batch on a model with beam.onnx: every answer is the one POST /v1/retrieve gives for that query.
const DIM = 12;
const LEVELS = 3;
const K = 8;
const N = 3000;
const MAX_BATCH = 200;

const tmp = tempDir();
let svc: RunningService;
const vectors = randomMatrix(N, DIM, 31);
const vectorOf = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));
const codebooks = Array.from({ length: LEVELS }, (_, l) => randomMatrix(K, DIM, 60 + l, 0.5 ** l));
const sidOf: number[][] = [];

async function post(url: string, payload: unknown) {
  const res = await svc.app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json() };
}

async function candidatesObserved(): Promise<number> {
  const res = await svc.app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith('sidx_retrieve_candidates_count{kind="total"} '));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** An answer without its timings (they differ from run to run). */
function untimed(answer: Record<string, unknown>): Record<string, unknown> {
  const { timingsMs, ...rest } = answer;
  assert.equal(typeof timingsMs, 'object');
  return rest;
}

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeBeamBundle(modelDir, 'batch-test', DIM, codebooks, K);
  svc = await startService(join(tmp.dir, 'data'), modelDir, { maxBatch: MAX_BATCH, maxK: N, maxCandidates: N });
  sidOf.push(...await upsertRows(svc.app, vectors, DIM, N, MAX_BATCH));
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('each answer of a batch is the answer of POST /v1/retrieve for that query, in the order of the queries', async () => {
  const queries: Record<string, unknown>[] = [];
  for (let q = 0; q < 100; q++) { // more than the 64 a batch keeps in flight at once
    const embedding = Array.from(randomMatrix(1, DIM, 700 + q));
    const given = [sidOf[(q * 37) % N]!, sidOf[(q * 91 + 5) % N]!];
    switch (q % 6) {
      case 0: queries.push({ embedding }); break; // beam + rerank, the defaults
      case 1: queries.push({ embedding, k: 25, beamWidth: 4, maxCandidates: 300 }); break;
      case 2: queries.push({ sids: given, k: 10 }); break; // sids mode: beam order, no rerank
      case 3: queries.push({ embedding, expand: 'hamming1', k: 15 }); break;
      case 4: queries.push({ embedding, sids: given, expand: 'beam', rerank: false, k: 30 }); break;
      default: queries.push({ embedding: Buffer.from(Float32Array.from(embedding).buffer).toString('base64'), expand: 'auto', k: 5 });
    }
  }
  const batch = await post('/v1/retrieve/batch', { queries });
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  assert.equal(batch.body.results.length, queries.length);
  for (let q = 0; q < queries.length; q++) {
    const one = await post('/v1/retrieve', queries[q]);
    assert.equal(one.status, 200, JSON.stringify(one.body));
    const [got, want] = [untimed(batch.body.results[q]), untimed(one.body)];
    assert.ok((want.items as unknown[]).length > 0, `query ${q} finds items`);
    assert.deepEqual(got, want, `query ${q}: ${JSON.stringify(queries[q])}`);
  }
});

test('a batch queues one encoder call per kind (beams of one width, encoder rows), not one per query', async () => {
  const pool = svc.service[kServiceTestHooks].pool();
  const release = pool[kPoolTestHooks].hold();
  try {
    const queries = Array.from({ length: 30 }, (_, q) => {
      const embedding = Array.from(randomMatrix(1, DIM, 800 + q));
      return q % 3 === 0 ? { embedding, expand: 'hamming1' } : q % 3 === 1 ? { embedding, beamWidth: 4 } : { embedding };
    });
    const answer = post('/v1/retrieve/batch', { queries });
    while (pool.queueLength < 3) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); // nothing more comes
    assert.equal(pool.queueLength, 3, 'encoder rows, beams of width 4, beams of the default width');
    release();
    const { status, body } = await answer;
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.results.map((r: { expand: string }) => r.expand), queries.map((q) => q.expand ?? 'beam'));
    for (const r of body.results) assert.ok(r.timingsMs.encode + r.timingsMs.beam > 0, 'the shared call counts in each answer\'s phases');
  } finally {
    release();
  }
});

test('a batch of one answers as the single route does', async () => {
  const query = { embedding: Array.from(randomMatrix(1, DIM, 990)), k: 7 };
  const batch = await post('/v1/retrieve/batch', { queries: [query] });
  const one = await post('/v1/retrieve', query);
  assert.equal(batch.status, 200);
  assert.deepEqual(untimed(batch.body.results[0]), untimed(one.body));
});

test('metrics observe every answer of a batch', async () => {
  const before = await candidatesObserved();
  const { status } = await post('/v1/retrieve/batch', { queries: [{ sids: [sidOf[1]!] }, { sids: [sidOf[2]!] }, { embedding: vectorOf(3) }] });
  assert.equal(status, 200);
  assert.equal(await candidatesObserved(), before + 3);
});

test('a bad query makes the whole batch a 400 naming it, and no query runs', async () => {
  const good = { sids: [sidOf[0]!] };
  const cases: [unknown, string, string][] = [
    [{ queries: [] }, 'queries', 'SIDX_ERR_INVALID_INPUT'],
    [{}, 'queries', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { k: 3 }] }, 'queries[1].embedding', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { sids: [[0, 0, K]] }] }, 'queries[1].sids[0][2]', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, good, { sids: [[0, 0]] }] }, 'queries[2].sids[0]', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { embedding: [1, 2] }] }, 'queries[1].embedding', 'SIDX_ERR_DIMENSION'],
    [{ queries: [{ embedding: 'not base64!' }] }, 'queries[0].embedding', 'SIDX_ERR_BASE64'],
    [{ queries: [good, { embedding: vectorOf(0).map(() => Number.NaN) }] }, 'queries[1].embedding[0]', 'SIDX_ERR_INVALID_INPUT'], // NaN is JSON null
    [{ queries: [good, { embedding: vectorOf(0).map((x, i) => (i === 3 ? 1e39 : x)) }] }, 'queries[1].embedding[3]', 'SIDX_ERR_NOT_FINITE'],
    [{ queries: [good, { ...good, colour: 'red' }] }, 'queries[1].colour', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { ...good, k: 0 }] }, 'queries[1].k', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { ...good, k: N + 1 }] }, 'queries[1].k', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { ...good, rerank: true }] }, 'queries[1].rerank', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [{ ...good, expand: 'beam' }] }, 'queries[0].embedding', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { ...good, beamWidth: 4 }] }, 'queries[1].beamWidth', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: [good, { embedding: vectorOf(0), expand: 'hamming1', beamWidth: 4 }] }, 'queries[1].beamWidth', 'SIDX_ERR_INVALID_INPUT'],
    [{ queries: Array.from({ length: MAX_BATCH + 1 }, () => good) }, 'queries', 'SIDX_ERR_BATCH_TOO_LARGE'],
  ];
  for (const [payload, field, code] of cases) {
    const observed = await candidatesObserved();
    const { status, body } = await post('/v1/retrieve/batch', payload);
    assert.equal(status, 400, `${JSON.stringify(payload).slice(0, 120)}: ${JSON.stringify(body)}`);
    assert.equal(body.field, field, JSON.stringify(body));
    assert.equal(body.code, code, JSON.stringify(body));
    assert.equal(await candidatesObserved(), observed, `${field}: no query ran`);
  }
});

test('a batch counts as one request against the rate limit', async () => {
  const app = await buildApp({ service: svc.service, config: loadConfig({ ...svc.config, rateLimit: { max: 2, windowMs: 3_600_000 } }, {}) });
  try {
    const payload = { queries: Array.from({ length: 10 }, (_, i) => ({ sids: [sidOf[i]!] })) };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url: '/v1/retrieve/batch', payload })).statusCode);
    assert.deepEqual(statuses, [200, 200, 429]);
  } finally {
    await app.close();
  }
});
