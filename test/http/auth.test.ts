import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { ROUTE_ACCESS } from '../../src/http/auth.ts';
import { buildApp } from '../../src/http/app.ts';
import { loadConfig } from '../../src/config.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const tmp = tempDir();
const vec = (seed: number) => Array.from(randomMatrix(1, DIM, seed));
let svc: RunningService;
let all: RunningService;
const keys: Record<'read' | 'write' | 'admin' | 'revoked', string> = { read: '', write: '', admin: '', revoked: '' };
let modelId = '';
let model2Id = '';
let jobId = '';

interface Call { method: 'GET' | 'POST'; url: string | (() => string); payload?: unknown; then?: (body: any) => void }

/** One valid request per protected route (a 2xx with the right key), in an order where each can succeed. */
function protectedCalls(): Array<Call & { access: 'write' | 'admin' }> {
  return [
    { access: 'write', method: 'POST', url: '/v1/items', payload: { items: [{ id: 'w1', embedding: vec(2) }] } },
    { access: 'write', method: 'POST', url: '/v1/items/delete', payload: { ids: ['w1'] } },
    { access: 'admin', method: 'GET', url: '/v1/models' },
    { access: 'admin', method: 'POST', url: '/v1/models', payload: { path: 'model2' } },
    { access: 'admin', method: 'POST', url: `/v1/models/${modelId}/activate` },
    // Slow on purpose (1 item/s over 3 items), so the cancel below finds it running.
    { access: 'admin', method: 'POST', url: '/v1/reindex', payload: { model: model2Id, batchSize: 1, maxItemsPerSecond: 1 }, then: (b) => (jobId = b.id) },
    { access: 'admin', method: 'GET', url: () => `/v1/jobs/${jobId}` },
    { access: 'admin', method: 'POST', url: () => `/v1/jobs/${jobId}/cancel` },
  ];
}

const readCalls = (): Call[] => [
  { method: 'POST', url: '/v1/encode', payload: { embeddings: [vec(3)] } },
  { method: 'POST', url: '/v1/retrieve', payload: { embedding: vec(3), k: 1 } },
  { method: 'POST', url: '/v1/retrieve/batch', payload: { queries: [{ embedding: vec(3), k: 1 }] } },
  { method: 'GET', url: '/v1/items/seed' },
];

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  modelId = (await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 })).id;
  model2Id = (await writeTestBundle(join(tmp.dir, 'model2'), { dim: DIM, levels: 2, codebookSize: 4, seed: 4 })).id;
  const registry = { model: { registryDir: tmp.dir } };
  svc = await startService(join(tmp.dir, 'data'), modelDir, {}, { ...registry, auth: { mode: 'writes' }, rateLimit: { max: 1000 } });
  all = await startService(join(tmp.dir, 'data-all'), modelDir, {}, { ...registry, auth: { mode: 'all' }, rateLimit: { max: 5, windowMs: 60_000 } });
  for (const dir of ['data', 'data-all']) {
    const control = ControlPlane.open(join(tmp.dir, dir, 'control.sqlite'));
    if (dir === 'data') {
      keys.read = control.keys.create('reader', 'read').key;
      keys.write = control.keys.create('writer', 'write').key;
      keys.admin = control.keys.create('admin', 'admin').key;
      const revoked = control.keys.create('gone', 'admin');
      keys.revoked = revoked.key;
      assert.equal(control.keys.revoke(revoked.id), true);
    } else {
      // Same names, other keys: a key belongs to one data directory.
      control.keys.create('reader', 'read');
    }
    control.close();
  }
  const seeded = await svc.app.inject({
    method: 'POST', url: '/v1/items', headers: { authorization: `Bearer ${keys.write}` },
    payload: { items: [{ id: 'seed', embedding: vec(1) }, { id: 's2', embedding: vec(5) }, { id: 's3', embedding: vec(6) }] },
  });
  assert.equal(seeded.statusCode, 200, seeded.body);
});

after(async () => {
  await svc.close();
  await all.close();
  tmp.cleanup();
});

const urlOf = (c: Call) => (typeof c.url === 'function' ? c.url() : c.url);
const send = (s: RunningService, c: Call, key?: string) =>
  s.app.inject({ method: c.method, url: urlOf(c), payload: c.payload as never, headers: key === undefined ? {} : { authorization: key } });

test('every protected route: 401 without a key, 403 with a wrong, revoked or too-weak key, 2xx with the right one', async () => {
  const calls = protectedCalls();
  const covered = new Set(calls.map((c) => `${c.method} ${typeof c.url === 'string' ? c.url.replace(modelId, ':id') : c.url.toString().includes('cancel') ? '/v1/jobs/:id/cancel' : '/v1/jobs/:id'}`));
  for (const [route, access] of Object.entries(ROUTE_ACCESS)) {
    const [method, url] = route.split(' ') as ['GET' | 'POST', string];
    if ((access === 'write' || access === 'admin') && svc.app.hasRoute({ method, url })) assert.ok(covered.has(route), `${route} has no auth case`);
  }
  for (const c of calls) {
    const what = `${c.method} ${urlOf(c)}`;
    const none = await send(svc, c);
    assert.equal(none.statusCode, 401, `${what} without key: ${none.body}`);
    assert.equal(none.json().code, 'SIDX_ERR_UNAUTHENTICATED');
    assert.equal(none.json().field, 'authorization');
    const malformed = await send(svc, c, `Basic ${keys.admin}`);
    assert.equal(malformed.statusCode, 401, `${what} malformed header`);
    for (const wrong of [`Bearer sidx_000000000000_${'A'.repeat(43)}`, `Bearer ${keys.admin.slice(0, -1)}x`, 'Bearer nonsense', `Bearer ${keys.revoked}`]) {
      const res = await send(svc, c, wrong);
      assert.equal(res.statusCode, 403, `${what} with ${wrong.slice(0, 30)}: ${res.body}`);
      assert.equal(res.json().code, 'SIDX_ERR_FORBIDDEN');
    }
    const weak = await send(svc, c, `Bearer ${c.access === 'admin' ? keys.write : keys.read}`);
    assert.equal(weak.statusCode, 403, `${what} with a lower scope`);
    assert.match(weak.json().message, new RegExp(`needs ${c.access}`));
    const right = await send(svc, c, `Bearer ${c.access === 'admin' ? keys.admin : keys.write}`);
    assert.ok(right.statusCode >= 200 && right.statusCode < 300, `${what} with the right key: ${right.statusCode} ${right.body}`);
    c.then?.(right.json());
  }
});

test('auth.mode writes leaves read routes open; all closes them; ops routes stay public', async () => {
  for (const c of readCalls()) {
    assert.equal((await send(svc, c)).statusCode, 200, `${c.url} open under writes`);
    assert.equal((await send(svc, c, `Bearer ${keys.read}`)).statusCode, 200, `${c.url} with a read key`);
    assert.equal((await send(svc, c, 'Bearer wrong')).statusCode, 403, `${c.url}: a wrong key is refused even where none is needed`);
    assert.equal((await send(all, c)).statusCode, 401, `${c.url} closed under all`);
    assert.equal((await send(all, c, `Bearer ${keys.read}`)).statusCode, 403, `${c.url}: a key of another data directory`);
  }
  for (const url of ['/healthz', '/readyz', '/metrics']) {
    assert.equal((await all.app.inject({ method: 'GET', url })).statusCode, 200, url);
    assert.equal((await all.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer wrong' } })).statusCode, 200, url);
  }
});

test('rate limit: counted per key, 429 with a JSON body and retry-after, ops routes exempt', async () => {
  const control = ControlPlane.open(join(tmp.dir, 'data-all', 'control.sqlite'));
  const a = control.keys.create('a', 'read').key;
  const b = control.keys.create('b', 'read').key;
  control.close();
  const get = (key: string) => all.app.inject({ method: 'GET', url: '/v1/items/none', headers: { authorization: `Bearer ${key}` } });
  for (let i = 0; i < 5; i++) assert.equal((await get(a)).statusCode, 404, `request ${i + 1} within the limit`);
  const limited = await get(a);
  assert.equal(limited.statusCode, 429);
  assert.equal(limited.json().code, 'SIDX_ERR_RATE_LIMITED');
  assert.ok(Number(limited.headers['retry-after']) > 0);
  assert.equal((await get(b)).statusCode, 404, 'another key has its own budget');
  for (let i = 0; i < 8; i++) assert.equal((await all.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  // A refused key costs no quota: the key check runs before the limiter.
  for (let i = 0; i < 8; i++) assert.equal((await all.app.inject({ method: 'GET', url: '/v1/items/x' })).statusCode, 401);
});

test('auth.mode off ignores the Authorization header (a proxy in front may use it)', async () => {
  const app = await buildApp({ service: null, config: loadConfig({}, {}) });
  try {
    const res = await app.inject({ method: 'POST', url: '/v1/items', headers: { authorization: 'Basic dXNlcjpwdw==' }, payload: { items: [{ id: 'a', embedding: [1] }] } });
    assert.equal(res.json().code, 'SIDX_ERR_NOT_READY', 'no 401/403: the request reaches the route');
  } finally {
    await app.close();
  }
});

test('the new configuration sections come from SIDX__SECTION__KEY variables and are validated', () => {
  const c = loadConfig({}, {
    SIDX__AUTH__MODE: 'all', SIDX__RATE_LIMIT__MAX: '5', SIDX__RATE_LIMIT__WINDOW_MS: '1000', SIDX__SERVER__SHUTDOWN_TIMEOUT_MS: '0',
    SIDX__MODEL__REGISTRY_DIR: '/models', SIDX__REINDEX__BATCH_SIZE: '10',
  });
  assert.deepEqual([c.auth.mode, c.rateLimit.max, c.rateLimit.windowMs, c.server.shutdownTimeoutMs, c.model.registryDir, c.reindex.batchSize],
    ['all', 5, 1000, 0, '/models', 10]);
  const d = loadConfig({}, {});
  assert.deepEqual([d.auth.mode, d.rateLimit.max, d.server.shutdownTimeoutMs, d.reindex.batchSize], ['off', 0, 25_000, 1000]);
  assert.throws(() => loadConfig({}, { SIDX__AUTH__MODE: 'some' }), /auth\.mode/);
  assert.throws(() => loadConfig({}, { SIDX__RATE_LIMIT__WINDOW_MS: '5' }), /rateLimit\.windowMs/);
});

test('auth.docs: /docs and /openapi.json are public by default, read routes with auth.docs read', async () => {
  const docs = ['/openapi.json', '/docs', '/docs/json', '/docs/static/index.html'];
  for (const url of docs) {
    const res = await all.app.inject({ method: 'GET', url });
    assert.ok(res.statusCode < 400, `${url} public under auth.mode all by default: ${res.statusCode}`);
  }
  const dir = tempDir();
  const modelDir = join(dir.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 });
  const closed = await startService(join(dir.dir, 'data'), modelDir, {}, { auth: { mode: 'all', docs: 'read' } });
  try {
    const control = ControlPlane.open(join(dir.dir, 'data', 'control.sqlite'));
    const reader = control.keys.create('docs-reader', 'read').key;
    control.close();
    for (const url of docs) {
      const refused = await closed.app.inject({ method: 'GET', url });
      assert.equal(refused.statusCode, 401, `${url} needs a key`);
      assert.equal(refused.json().code, 'SIDX_ERR_UNAUTHENTICATED');
      const res = await closed.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${reader}` } });
      assert.ok(res.statusCode < 400, `${url} with a read key: ${res.statusCode}`);
    }
    assert.equal((await closed.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'ops routes stay public');
  } finally {
    await closed.close();
    dir.cleanup();
  }
  assert.equal(loadConfig({}, { SIDX__AUTH__DOCS: 'read' }).auth.docs, 'read');
  assert.throws(() => loadConfig({}, { SIDX__AUTH__DOCS: 'admin' }), /auth\.docs/);
});
