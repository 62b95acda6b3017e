/**
 * Load shedding (limits.maxEncoderQueue) on the real service and app. The encoder pool's dispatch is held (a test
 * hook), so queued chunks stay queued until released: which requests find the queue full is decided by the test,
 * not by how fast the worker runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.ts';
import { buildApp, renderOpenApi } from '../../src/http/app.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { kPoolTestHooks } from '../../src/tokenizer/encoder-pool.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const tmp = tempDir();
let svc: RunningService;

const embedding = (seed: number) => Array.from(randomMatrix(1, DIM, seed));
const items = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `item-${from + i}`, embedding: embedding(from + i) }));
const encode = (app: FastifyInstance, seed: number) => app.inject({ method: 'POST', url: '/v1/encode', payload: { embeddings: [embedding(seed)] } });
const retrieve = (app: FastifyInstance, seed: number) => app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: embedding(seed), k: 3 } });
const retrieveBatch = (app: FastifyInstance, seed: number) => app.inject({
  method: 'POST', url: '/v1/retrieve/batch', payload: { queries: [{ embedding: embedding(seed), k: 3 }, { embedding: embedding(seed + 1) }] },
});
const upsert = (app: FastifyInstance, from: number) => app.inject({ method: 'POST', url: '/v1/items', payload: { items: items(from, 2) } });

const pool = () => svc.service[kServiceTestHooks].pool();

/** Waits, without any time limit of its own, until `n` encoder chunks are queued. */
async function untilQueued(n: number): Promise<void> {
  while (pool().queueLength < n) await new Promise((r) => setImmediate(r));
}

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 5 });
  svc = await startService(join(tmp.dir, 'data'), modelDir, { maxEncoderQueue: 1 });
  assert.equal((await upsert(svc.app, 0)).statusCode, 200);
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('a full encoder queue sheds reads with 503 + Retry-After, counts them, and still acknowledges every write', { timeout: 60_000 }, async () => {
  const release = pool()[kPoolTestHooks].hold();
  const admitted = encode(svc.app, 100);
  await untilQueued(1);

  const reads = await Promise.all([0, 1, 2, 3].flatMap((i) => [encode(svc.app, 200 + i), retrieve(svc.app, 300 + i), retrieveBatch(svc.app, 310 + 2 * i)]));
  for (const res of reads) {
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.headers['retry-after'], '1');
    const body = res.json();
    assert.equal(body.code, 'SIDX_ERR_OVERLOADED');
    assert.match(body.message, /1 encoder chunks are waiting \(limit 1\)/);
  }
  const lookup = await svc.app.inject({ method: 'GET', url: '/v1/items/item-0' });
  assert.equal(lookup.statusCode, 200, 'an item lookup never waits for the encoder and is not shed');

  const writes = [upsert(svc.app, 10), upsert(svc.app, 20), upsert(svc.app, 30)];
  const deletion = svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ['item-1'] } });
  await untilQueued(4);
  assert.equal(pool().queueLength, 4, 'the three upserts queued behind the admitted read instead of being refused');
  release();

  const answers = await Promise.all([admitted, ...writes, deletion]);
  assert.deepEqual(answers.map((r) => r.statusCode), [200, 200, 200, 200, 200]);
  assert.equal(answers[1]!.json().items.length, 2);
  assert.deepEqual(answers[4]!.json(), { deleted: 1, missing: [] });
  assert.equal((await encode(svc.app, 400)).statusCode, 200, 'once the queue drained, reads are served again');
  assert.equal((await svc.app.inject({ method: 'GET', url: '/v1/items/item-31' })).statusCode, 200, 'the upserts were written');

  const metrics = (await svc.app.inject({ method: 'GET', url: '/metrics' })).body;
  const value = (series: string) => Number(metrics.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
  assert.equal(value('sidx_requests_shed_total{route="/v1/encode"}'), 4);
  assert.equal(value('sidx_requests_shed_total{route="/v1/retrieve"}'), 4);
  assert.equal(value('sidx_requests_shed_total{route="/v1/retrieve/batch"}'), 4);
  assert.equal(value('sidx_http_request_duration_seconds_count{method="POST",route="/v1/encode",status="503"}'), 4);
  assert.ok(!metrics.includes('sidx_requests_shed_total{route="/v1/items"}'));
});

test('maxEncoderQueue 0 turns shedding off: reads queue however long the queue is', { timeout: 60_000 }, async () => {
  const config = loadConfig({ ...svc.config, limits: { ...svc.config.limits, maxEncoderQueue: 0 } }, {});
  const app = await buildApp({ service: svc.service, config });
  const release = pool()[kPoolTestHooks].hold();
  try {
    const reads = [encode(app, 500), retrieve(app, 501), encode(app, 502), retrieveBatch(app, 503)];
    await untilQueued(4);
    release();
    assert.deepEqual((await Promise.all(reads)).map((r) => r.statusCode), [200, 200, 200, 200]);
  } finally {
    release();
    await app.close();
  }
});

test('a shed read costs no rate-limit quota: shedding runs before the rate limit', { timeout: 60_000 }, async () => {
  const config = loadConfig({ ...svc.config, rateLimit: { max: 1, windowMs: 3_600_000 } }, {});
  const app = await buildApp({ service: svc.service, config });
  const release = pool()[kPoolTestHooks].hold();
  try {
    const admitted = encode(app, 600);
    await untilQueued(1);
    assert.deepEqual((await Promise.all([encode(app, 601), retrieve(app, 602)])).map((r) => r.statusCode), [503, 503]);
    release();
    assert.equal((await admitted).statusCode, 200);
    assert.equal((await encode(app, 603)).statusCode, 429, 'the admitted read used the quota of 1');
  } finally {
    release();
    await app.close();
  }
});

test('OpenAPI: exactly /v1/encode, /v1/retrieve and /v1/retrieve/batch declare the overload 503 with its Retry-After header', async () => {
  const doc = JSON.parse(await renderOpenApi(loadConfig({}, {})));
  const shed: string[] = [];
  for (const [path, ops] of Object.entries<Record<string, { responses: Record<string, { headers?: object; description: string }> }>>(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const unavailable = op.responses['503'];
      if (unavailable?.headers && 'Retry-After' in unavailable.headers) {
        assert.match(unavailable.description, /SIDX_ERR_OVERLOADED/);
        shed.push(`${method} ${path}`);
      }
    }
  }
  assert.deepEqual(shed.sort(), ['post /v1/encode', 'post /v1/retrieve', 'post /v1/retrieve/batch']);
});
