import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const tmp = tempDir();
let svc: RunningService;

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 });
  svc = await startService(join(tmp.dir, 'data'), modelDir);
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

async function scrape(): Promise<{ text: string; value: (series: string) => number }> {
  const res = await svc.app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  const value = (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
  };
  return { text, value };
}

test('GET /metrics: Prometheus text with every family, and the counters move with traffic', async () => {
  const before = await scrape();
  for (const family of [
    'sidx_http_request_duration_seconds', 'sidx_encode_batch_rows', 'sidx_encode_duration_seconds', 'sidx_encoded_items_total',
    'sidx_encode_items_per_second', 'sidx_retrieve_candidates', 'sidx_items_indexed_total', 'sidx_job_processed_items',
    'sidx_encoder_queue_length', 'sidx_encoder_in_flight', 'sidx_catalog_items', 'sidx_event_loop_lag_seconds',
    'sidx_requests_shed_total',
  ]) {
    assert.match(before.text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  }
  assert.equal(before.value('sidx_catalog_items'), 0);
  assert.equal(before.value('sidx_encoder_queue_length'), 0);

  const items = Array.from({ length: 20 }, (_, i) => ({ id: `i${i}`, embedding: Array.from(randomMatrix(1, DIM, 100 + i)) }));
  assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items } })).statusCode, 200);
  for (let i = 0; i < 3; i++) {
    const r = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: items[i]!.embedding, k: 5, expand: 'hamming1' } });
    assert.equal(r.statusCode, 200);
  }
  assert.equal((await svc.app.inject({ method: 'GET', url: '/v1/nope' })).statusCode, 404);

  const after = await scrape();
  assert.equal(after.value('sidx_items_indexed_total{source="api"}'), 20);
  assert.equal(after.value('sidx_catalog_items'), 20);
  assert.equal(after.value('sidx_encoded_items_total'), 23, '20 upserted + 3 queries');
  assert.equal(after.value('sidx_encode_batch_rows_count'), 4);
  assert.equal(after.value('sidx_encode_batch_rows_sum'), 23);
  assert.ok(after.value('sidx_encode_items_per_second') > 0);
  assert.equal(after.value('sidx_retrieve_candidates_count{kind="exact"}'), 3);
  assert.equal(after.value('sidx_retrieve_candidates_count{kind="hamming1"}'), 3);
  assert.ok(after.value('sidx_retrieve_candidates_sum{kind="total"}') >= 3, 'each query finds at least its own item');
  assert.equal(after.value('sidx_http_request_duration_seconds_count{method="POST",route="/v1/retrieve",status="200"}'), 3);
  assert.equal(after.value('sidx_http_request_duration_seconds_count{method="POST",route="/v1/items",status="200"}'), 1);
  assert.equal(after.value('sidx_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}'), 1);
  assert.ok(after.value('sidx_event_loop_lag_seconds{quantile="0.99"}') >= 0);
});

test('sidx_request_phase_seconds: an upsert batch\'s encode, lock, write, commit and apply', async () => {
  const before = await scrape();
  const phase = (s: Awaited<ReturnType<typeof scrape>>, name: string, what: 'count' | 'sum') =>
    s.value(`sidx_request_phase_seconds_${what}{route="/v1/items",phase="${name}"}`) || 0;
  const t0 = performance.now();
  const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'phases-a', embedding: Array.from(randomMatrix(1, DIM, 11)) }] } });
  const wallSeconds = (performance.now() - t0) / 1000;
  assert.equal(res.statusCode, 200, res.body);
  const after = await scrape();
  let sum = 0;
  for (const name of ['encode', 'lock', 'write', 'commit', 'apply']) {
    assert.equal(phase(after, name, 'count') - phase(before, name, 'count'), 1, name);
    const seconds = phase(after, name, 'sum') - phase(before, name, 'sum');
    assert.ok(seconds >= 0, `${name}: ${seconds}`);
    sum += seconds;
  }
  assert.ok(sum > 0 && sum <= wallSeconds, `the phases (${sum} s) lie within the request (${wallSeconds} s)`);
  for (const name of ['parse', 'respond']) assert.equal(phase(after, name, 'count') - phase(before, name, 'count'), 1, name);
  const refused = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'x', embedding: [1] }] } });
  assert.equal(refused.statusCode, 400);
  assert.equal(phase(await scrape(), 'commit', 'count'), phase(after, 'commit', 'count'), 'a refused batch has no service phases');
});

test('sidx_request_phase_seconds: parse and respond for every /v1 request, the service phases of each retrieve', async () => {
  const before = await scrape();
  const count = (phase: string, route = '/v1/retrieve') =>
    (s: Awaited<ReturnType<typeof scrape>>) => s.value(`sidx_request_phase_seconds_count{route="${route}",phase="${phase}"}`) || 0;
  const embedding = Array.from(randomMatrix(1, DIM, 7));
  const r = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding, k: 3, expand: 'hamming1' } });
  assert.equal(r.statusCode, 200);
  const timings = r.json().timingsMs as Record<string, number>;
  assert.deepEqual(Object.keys(timings).sort(), ['beam', 'candidates', 'encode', 'fetch', 'rerank', 'total']);
  const parts = timings.encode! + timings.beam! + timings.candidates! + timings.rerank! + timings.fetch!;
  assert.ok(Math.abs(parts - timings.total!) < 1e-6 * Math.max(1, timings.total!), 'the phases add up to the total');
  assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/encode', payload: { embeddings: [embedding] } })).statusCode, 200);
  const after = await scrape();
  for (const phase of ['parse', 'encode', 'beam', 'candidates', 'rerank', 'fetch', 'respond']) {
    assert.equal(count(phase)(after) - count(phase)(before), 1, phase);
  }
  assert.equal(count('parse', '/v1/encode')(after) - count('parse', '/v1/encode')(before), 1);
  assert.equal(count('respond', '/v1/encode')(after) - count('respond', '/v1/encode')(before), 1);
  assert.equal(count('candidates', '/v1/encode')(after), 0, 'service phases are a retrieve\'s or an upsert\'s');
  assert.equal(count('parse', '/metrics')(after), 0, 'ops routes are not broken down');
});

test('a request answered before its handler runs is counted under its route, without a parse phase; HEAD under its GET route', async () => {
  const before = await scrape();
  const duration = (s: Awaited<ReturnType<typeof scrape>>, method: string, route: string, status: number) =>
    s.value(`sidx_http_request_duration_seconds_count{method="${method}",route="${route}",status="${status}"}`) || 0;
  const parse = (s: Awaited<ReturnType<typeof scrape>>) => s.value('sidx_request_phase_seconds_count{route="/v1/retrieve",phase="parse"}') || 0;
  assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: [1, 2], k: 'ten' } })).statusCode, 400);
  assert.equal((await svc.app.inject({ method: 'HEAD', url: '/healthz' })).statusCode, 200);
  assert.equal((await svc.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const after = await scrape();
  assert.equal(duration(after, 'POST', '/v1/retrieve', 400) - duration(before, 'POST', '/v1/retrieve', 400), 1);
  assert.equal(parse(after), parse(before), 'the validation failed before the handler');
  assert.equal(duration(after, 'HEAD', '/healthz', 200) - duration(before, 'HEAD', '/healthz', 200), 1);
  assert.equal(duration(after, 'GET', '/healthz', 200) - duration(before, 'GET', '/healthz', 200), 1);
});
