/**
 * Property-based bad-input fuzzing of the HTTP API (in-process, `inject`), generators in
 * test/helpers/bad-requests.ts. CI: 2,000 malformed requests + 300 unicode ids; SIDX_LONG=1: 10,000 + 2,000.
 * Reproduce a failure with SIDX_FUZZ_SEED=<seed printed by fast-check>.
 *
 * Every malformed request must get a 4xx with the one JSON error shape, the process must stay up, and nothing
 * may be written: /readyz counts, a probe item and the catalog's last change-log seq are compared after every
 * request. Valid-but-odd unicode ids that are accepted must read back exactly through GET /v1/items/{id}.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import { ErrorCodes } from '../../src/errors.ts';
import { CatalogInspector } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { makeArbitraries, type BadRequest, type FuzzSpec } from '../helpers/bad-requests.ts';

const LONG = process.env.SIDX_LONG === '1';
const BAD_RUNS = LONG ? 10_000 : 2_000;
const ID_RUNS = LONG ? 2_000 : 300;
const SEED = process.env.SIDX_FUZZ_SEED === undefined ? undefined : Number(process.env.SIDX_FUZZ_SEED);

const DIM = 8;
const tmp = tempDir('sidx-fuzz-');
let svc: RunningService;
let spec: FuzzSpec;
let inspector: CatalogInspector;
const probe = Array.from(randomMatrix(1, DIM, 5));

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  const manifest = await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 });
  spec = { dim: DIM, levels: 2, codebookSize: 4, maxBatch: 4, maxK: 50, maxCandidates: 500, bodyLimit: 2048, modelId: manifest.id };
  svc = await startService(join(tmp.dir, 'data'), modelDir, { maxBatch: 4, maxK: 50, maxCandidates: 500, defaultMaxCandidates: 100 }, { server: { bodyLimitBytes: 2048 } });
  const seeded = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'probe', embedding: probe }] } });
  assert.equal(seeded.statusCode, 200);
  inspector = CatalogInspector.open(join(tmp.dir, 'data', 'catalog'));
});

after(async () => {
  await inspector?.close();
  await svc?.close();
  tmp.cleanup();
});

async function state() {
  const ready = (await svc.app.inject({ method: 'GET', url: '/readyz' })).json();
  const probeItem = (await svc.app.inject({ method: 'GET', url: '/v1/items/probe' })).body;
  return { items: ready.items, vectors: ready.vectors, probeItem, lastSeq: inspector.verify().lastSeq };
}

function assertErrorShape(status: number, text: string, what: string): void {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${what}: ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  assert.equal(body.statusCode, status, `${what}: statusCode in body`);
  assert.ok(Object.hasOwn(ErrorCodes, String(body.code)), `${what}: code ${String(body.code)} is not a documented SIDX_ERR_* code`);
  assert.equal(typeof body.error, 'string', `${what}: error`);
  assert.equal(typeof body.message, 'string', `${what}: message`);
  if ('field' in body) assert.equal(typeof body.field, 'string', `${what}: field`);
  for (const key of Object.keys(body)) assert.ok(['statusCode', 'code', 'error', 'message', 'field'].includes(key), `${what}: unexpected key ${key}`);
}

const describe = (r: BadRequest) => `${r.family}: ${r.method} ${r.url.slice(0, 120)} ${JSON.stringify(r.headers)} ${(r.payload ?? '').slice(0, 300)}`;

test(`${BAD_RUNS} malformed requests: 4xx with the JSON error shape, nothing written`, { timeout: LONG ? 1_800_000 : 300_000 }, async (t) => {
  const { badRequest } = makeArbitraries(spec);
  const baseline = await state();
  const families = new Map<string, number>();
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(badRequest, async (r) => {
      const res = await svc.app.inject({ method: r.method, url: r.url, headers: r.headers, payload: r.payload });
      const what = describe(r);
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}\n-> ${res.statusCode} ${res.body.slice(0, 300)}`);
      if (r.expect !== undefined) assert.equal(res.statusCode, r.expect, `${what}\n-> ${res.body.slice(0, 300)}`);
      assertErrorShape(res.statusCode, res.body, what);
      assert.deepEqual(await state(), baseline, `${what}: something was written`);
      families.set(r.family, (families.get(r.family) ?? 0) + 1);
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }),
    { numRuns: BAD_RUNS, seed: SEED, endOnFailure: true },
  );
  t.diagnostic(`families: ${JSON.stringify(Object.fromEntries(families))}`);
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.equal([...families.values()].reduce((a, b) => a + b, 0), BAD_RUNS);
  // Still serving: a valid request works and the catalog is intact.
  const ok = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: probe, k: 1 } });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().items[0].id, 'probe');
  assert.ok(inspector.verify().ok);
});

/** The path segment for an id: percent-encoded, and "." / ".." spelt so that URL normalisation keeps them. */
function idPath(id: string): string {
  const enc = encodeURIComponent(id);
  return enc === '.' || enc === '..' ? enc.replaceAll('.', '%2E') : enc;
}

const LONE_SURROGATE = /\p{Cs}/u;
/**
 * The API contract for ids: 1..512 characters (code points), no unpaired surrogate, at most 512 UTF-8 bytes, and
 * not "." or ".." (URL path navigation: no GET could name them).
 */
const validId = (id: string) => id.length > 0 && [...id].length <= 512 && !LONE_SURROGATE.test(id) && Buffer.byteLength(id, 'utf8') <= 512
  && id !== '.' && id !== '..';

test(`${ID_RUNS} odd unicode ids: accepted ones round-trip exactly through GET /v1/items/{id}, refused ones write nothing`, { timeout: LONG ? 1_800_000 : 300_000 }, async () => {
  const { goodEmbedding } = makeArbitraries(spec);
  const odd = fc.constantFrom('.', '..', '/', 'a/b', '?', '#', '%', '%2F', ' ', ' x ', '\u0000', '\n', '\t', '\\', '"', "'", '+', '&a=b',
    '\u200d', '\u202e', 'e\u0301', '\ufeff', '\uffff', '👩‍👩‍👧‍👦', '🏳️‍🌈', '中文', 'ﷺ', '\u{10ffff}', 'Ω', 'Ω');
  const idArb = fc.oneof(
    odd,
    fc.tuple(odd, odd, fc.string({ unit: 'grapheme', maxLength: 5 })).map(([a, b, c]) => a + c + b),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 8 }),
    fc.string({ unit: 'binary-ascii', minLength: 90, maxLength: 520 }),
    fc.string({ unit: 'grapheme', minLength: 100, maxLength: 600 }), // over the contract when > 512 code points or bytes
  );
  const baseline = await state();
  await fc.assert(
    fc.asyncProperty(idArb, goodEmbedding, async (id, embedding) => {
      const what = `id ${JSON.stringify(id)}`;
      if (id === 'probe') return;
      const before = await state();
      const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id, embedding }] } });
      if (!validId(id)) {
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}: outside the id contract, got ${res.statusCode}`);
        assertErrorShape(res.statusCode, res.body, what);
        assert.deepEqual(await state(), before, `${what}: refused but written`);
        return;
      }
      assert.equal(res.statusCode, 200, `${what}: a valid id was refused: ${res.body}`);
      assert.equal(res.json().items[0].id, id, `${what}: upsert echoes the id`);
      const got = await svc.app.inject({ method: 'GET', url: `/v1/items/${idPath(id)}` });
      assert.equal(got.statusCode, 200, `${what}: GET /v1/items/${idPath(id)} -> ${got.body}`);
      assert.equal(got.json().id, id, `${what}: round trip`);
      const del = await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: [id] } });
      assert.equal(del.json().deleted, 1, `${what}: delete`);
      const now = await state();
      assert.deepEqual({ ...now, lastSeq: 0n }, { ...baseline, lastSeq: 0n }, `${what}: state restored after delete`);
    }),
    { numRuns: ID_RUNS, seed: SEED, endOnFailure: true },
  );
  assert.ok(inspector.verify().ok);
});

// Found by this file and fixed in src/http: Fastify's maxParamLength (default 100), frameworkErrors, and ids that
// are URL path segments.

test('GET /v1/items/{id} reads back an accepted id of over 100 characters', async () => {
  const id = 'ünïcødé-🙂-'.repeat(12);
  const up = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id, embedding: probe }] } });
  assert.equal(up.statusCode, 200);
  try {
    const got = await svc.app.inject({ method: 'GET', url: `/v1/items/${idPath(id)}` });
    assert.equal(got.statusCode, 200, got.body);
  } finally {
    await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: [id] } });
  }
});

test('ids "." and ".." are refused at upsert (no GET could name them)', async () => {
  for (const id of ['.', '..']) {
    const baseline = await state();
    const up = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'fine', embedding: probe }, { id, embedding: probe }] } });
    assert.equal(up.statusCode, 400, up.body);
    assert.equal(up.json().field, 'items[1].id');
    assert.deepEqual(await state(), baseline);
  }
});

test('router-level bad paths (malformed percent-encoding, over-long parameter) get the JSON error shape', async () => {
  const { routerLevelBadPath } = makeArbitraries(spec);
  const baseline = await state();
  await fc.assert(
    fc.asyncProperty(routerLevelBadPath, async (r) => {
      const res = await svc.app.inject({ method: r.method, url: r.url, headers: r.headers });
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, describe(r));
      assertErrorShape(res.statusCode, res.body, describe(r));
      assert.deepEqual(await state(), baseline);
    }),
    { numRuns: 50, seed: SEED },
  );
});
