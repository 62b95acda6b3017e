import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const tmp = tempDir();
let svc: RunningService;
const good = () => Array.from(randomMatrix(1, DIM, 5));
const b64 = (v: number[]) => Buffer.from(Float32Array.from(v).buffer).toString('base64');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** The same bytes to Node's decoder, but the lowest bit of the last character before the padding set. */
const withTrailingBits = (text: string) => {
  const at = text.replace(/=+$/, '').length - 1;
  assert.ok(at < text.length - 1, 'the encoding has padding');
  return text.slice(0, at) + ALPHABET[ALPHABET.indexOf(text[at]!) | 1] + text.slice(at + 1);
};

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 });
  svc = await startService(join(tmp.dir, 'data'), modelDir, { maxBatch: 4, maxK: 50 });
  const seeded = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'seed', embedding: good() }] } });
  assert.equal(seeded.statusCode, 200);
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

async function state() {
  const ready = (await svc.app.inject({ method: 'GET', url: '/readyz' })).json();
  const seed = (await svc.app.inject({ method: 'GET', url: '/v1/items/seed' })).json();
  // The vector file too: a refused batch is neither encoded nor written, not even to rows no record names.
  const vectorFileBytes = statSync(join(tmp.dir, 'data', 'catalog', 'vectors.f32')).size;
  return { items: ready.items, vectors: ready.vectors, seed, vectorFileBytes };
}

const cases: Array<{ name: string; url: string; body: unknown; code: string; field?: string; raw?: boolean; message?: RegExp }> = [
  { name: 'wrong dimension (array)', url: '/v1/items', body: { items: [{ id: 'a', embedding: [1, 2, 3] }] }, code: 'SIDX_ERR_DIMENSION', field: 'items[0].embedding' },
  { name: 'wrong dimension (base64)', url: '/v1/encode', body: { embeddings: [b64([1, 2, 3])] }, code: 'SIDX_ERR_DIMENSION', field: 'embeddings[0]' },
  { name: 'Infinity via 1e999', url: '/v1/items', raw: true, body: `{"items":[{"id":"a","embedding":[1e999,0,0,0,0,0,0,0]}]}`, code: 'SIDX_ERR_NOT_FINITE', field: 'items[0].embedding[0]' },
  { name: 'Infinity via 1e309 in a query', url: '/v1/retrieve', raw: true, body: `{"embedding":[0,0,-1e309,0,0,0,0,0]}`, code: 'SIDX_ERR_NOT_FINITE', field: 'embedding[2]' },
  { name: 'norm above limits.maxVectorNorm (one huge element)', url: '/v1/items', body: { items: [{ id: 'a', embedding: good() }, { id: 'b', embedding: [0, 0, 1e30, 0, 0, 0, 0, 0] }] }, code: 'SIDX_ERR_NORM_TOO_LARGE', field: 'items[1].embedding' },
  { name: 'norm above limits.maxVectorNorm (base64 of 3e38s)', url: '/v1/items', body: { items: [{ id: 'a', embedding: b64(Array(DIM).fill(3e38)) }] }, code: 'SIDX_ERR_NORM_TOO_LARGE', field: 'items[0].embedding' },
  { name: 'query norm above limits.maxVectorNorm', url: '/v1/retrieve', body: { embedding: [0, 2e4, 0, 0, 0, 0, 0, 0] }, code: 'SIDX_ERR_NORM_TOO_LARGE', field: 'embedding' },
  { name: 'encode norm above limits.maxVectorNorm', url: '/v1/encode', body: { embeddings: [good(), Array(DIM).fill(4000)] }, code: 'SIDX_ERR_NORM_TOO_LARGE', field: 'embeddings[1]' },
  { name: 'beyond float32 range', url: '/v1/encode', body: { embeddings: [[0, 1e39, 0, 0, 0, 0, 0, 0]] }, code: 'SIDX_ERR_NOT_FINITE', field: 'embeddings[0][1]' },
  { name: 'NaN in base64', url: '/v1/retrieve', body: { embedding: b64([NaN, 0, 0, 0, 0, 0, 0, 0]) }, code: 'SIDX_ERR_NOT_FINITE', field: 'embedding[0]' },
  // The decoder is the upsert's only check of the values (the catalog takes them as checked: UpsertChecks.finite).
  { name: 'NaN in a base64 upsert', url: '/v1/items', body: { items: [{ id: 'a', embedding: good() }, { id: 'n', embedding: b64([0, 0, 0, NaN, 0, 0, 0, 0]) }] }, code: 'SIDX_ERR_NOT_FINITE', field: 'items[1].embedding[3]' },
  { name: 'NaN literal is not JSON', url: '/v1/items', raw: true, body: `{"items":[{"id":"a","embedding":[NaN,0,0,0,0,0,0,0]}]}`, code: 'SIDX_ERR_INVALID_INPUT' },
  { name: 'malformed base64', url: '/v1/items', body: { items: [{ id: 'a', embedding: 'not*base64!' }] }, code: 'SIDX_ERR_BASE64', field: 'items[0].embedding' },
  { name: 'empty base64 string', url: '/v1/items', body: { items: [{ id: 'a', embedding: '' }] }, code: 'SIDX_ERR_DIMENSION', field: 'items[0].embedding' },
  // Same length as a valid encoding of DIM floats, one character off: Node's decoder would skip '*' and read '-' as '+'.
  { name: 'base64 with a character outside the alphabet', url: '/v1/retrieve', body: { embedding: `*${b64(good()).slice(1)}` }, code: 'SIDX_ERR_BASE64', field: 'embedding' },
  { name: 'URL-safe base64', url: '/v1/retrieve', body: { embedding: `-${b64(good()).slice(1)}` }, code: 'SIDX_ERR_BASE64', field: 'embedding' },
  { name: 'base64 without its padding', url: '/v1/retrieve', body: { embedding: b64(good()).replace(/=+$/, '') }, code: 'SIDX_ERR_BASE64', field: 'embedding' },
  // Same length again: a '=' inside (Node's decoder stops there), a space (skipped), set bits past the last byte (ignored).
  { name: 'base64 with a = inside', url: '/v1/retrieve', body: { embedding: `${b64(good()).slice(0, 8)}=${b64(good()).slice(9)}` }, code: 'SIDX_ERR_BASE64', field: 'embedding' },
  { name: 'base64 with a space inside', url: '/v1/items', body: { items: [{ id: 'a', embedding: `${b64(good()).slice(0, 8)} ${b64(good()).slice(9)}` }] }, code: 'SIDX_ERR_BASE64', field: 'items[0].embedding' },
  { name: 'base64 with bits set past its last byte', url: '/v1/retrieve', body: { embedding: withTrailingBits(b64(good())) }, code: 'SIDX_ERR_BASE64', field: 'embedding' },
  { name: 'valid base64 of DIM - 1 floats', url: '/v1/items', body: { items: [{ id: 'a', embedding: b64(good().slice(1)) }] }, code: 'SIDX_ERR_DIMENSION', field: 'items[0].embedding', message: /^items\[0\]\.embedding decodes to 7 floats, expected 8$/ },
  // Valid base64, but of a byte count no float32 array has: the message says so rather than "0.75 floats".
  { name: 'valid base64 of 3 bytes', url: '/v1/encode', body: { embeddings: [Buffer.from('abc').toString('base64')] }, code: 'SIDX_ERR_DIMENSION', field: 'embeddings[0]', message: /^embeddings\[0\]: base64 decodes to 3 bytes, not a multiple of 4 \(float32\); expected 32 bytes \(8 floats\)$/ },
  { name: 'empty batch', url: '/v1/items', body: { items: [] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items' },
  { name: 'empty encode batch', url: '/v1/encode', body: { embeddings: [] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'embeddings' },
  { name: 'over-limit batch', url: '/v1/items', body: { items: Array.from({ length: 5 }, (_, i) => ({ id: `x${i}`, embedding: good() })) }, code: 'SIDX_ERR_BATCH_TOO_LARGE', field: 'items' },
  { name: 'over-limit delete', url: '/v1/items/delete', body: { ids: ['1', '2', '3', '4', '5'] }, code: 'SIDX_ERR_BATCH_TOO_LARGE', field: 'ids' },
  { name: 'duplicate ids', url: '/v1/items', body: { items: [{ id: 'd', embedding: good() }, { id: 'd', embedding: good() }] }, code: 'SIDX_ERR_DUPLICATE_ID', field: 'items[1].id' },
  { name: 'duplicate delete ids', url: '/v1/items/delete', body: { ids: ['seed', 'seed'] }, code: 'SIDX_ERR_DUPLICATE_ID', field: 'ids[1]' },
  { name: 'a bad item spoils the whole batch', url: '/v1/items', body: { items: [{ id: 'ok', embedding: good() }, { id: 'bad', embedding: [1] }] }, code: 'SIDX_ERR_DIMENSION', field: 'items[1].embedding' },
  { name: 'unknown model', url: '/v1/encode', body: { embeddings: [good()], model: 'nope' }, code: 'SIDX_ERR_UNKNOWN_MODEL', field: 'model' },
  { name: 'k = 0', url: '/v1/retrieve', body: { embedding: good(), k: 0 }, code: 'SIDX_ERR_INVALID_INPUT', field: 'k' },
  { name: 'k above the limit', url: '/v1/retrieve', body: { embedding: good(), k: 51 }, code: 'SIDX_ERR_INVALID_INPUT', field: 'k' },
  { name: 'k not an integer', url: '/v1/retrieve', body: { embedding: good(), k: 2.5 }, code: 'SIDX_ERR_INVALID_INPUT', field: 'k' },
  { name: 'neither embedding nor sids', url: '/v1/retrieve', body: { k: 3 }, code: 'SIDX_ERR_INVALID_INPUT', field: 'embedding' },
  { name: 'sid with the wrong number of levels', url: '/v1/retrieve', body: { sids: [[1, 2, 3]] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'sids[0]' },
  { name: 'sid code outside the codebook', url: '/v1/retrieve', body: { sids: [[1, 4]] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'sids[0][1]' },
  { name: 'rerank without an embedding', url: '/v1/retrieve', body: { sids: [[1, 1]], rerank: true }, code: 'SIDX_ERR_INVALID_INPUT', field: 'rerank' },
  { name: 'unknown expand mode', url: '/v1/retrieve', body: { embedding: good(), expand: 'Hamming1' }, code: 'SIDX_ERR_INVALID_INPUT', field: 'expand', message: /^expand must be one of none, hamming1, auto, beam$/ },
  { name: 'unknown expand mode in a batch', url: '/v1/retrieve/batch', body: { queries: [{ sids: [[1, 1]] }, { embedding: good(), expand: 'all' }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'queries[1].expand', message: /^queries\[1\]\.expand must be one of none, hamming1, auto, beam$/ },
  { name: 'unknown field', url: '/v1/items', body: { items: [{ id: 'a', embedding: good(), extra: 1 }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items[0].extra', message: /^unknown field items\[0\]\.extra \(allowed: id, embedding\)$/ },
  // A misspelt field leaves a required one missing, which Ajv reports first: the answer names the misspelt one.
  { name: 'misspelt item field', url: '/v1/items', body: { items: [{ id: 'a', vector: good() }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items[0].vector', message: /^unknown field items\[0\]\.vector \(allowed: id, embedding\)$/ },
  { name: 'misspelt encode field', url: '/v1/encode', body: { embedding: [good()] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'embedding', message: /^unknown field embedding \(allowed: embeddings, model\)$/ },
  { name: 'unknown retrieve field', url: '/v1/retrieve', body: { sids: [[1, 1]], topK: 5 }, code: 'SIDX_ERR_INVALID_INPUT', field: 'topK', message: /^unknown field topK \(allowed: embedding, sids, k, expand, beamWidth, rerank, maxCandidates\)$/ },
  { name: 'unknown field in a batch query', url: '/v1/retrieve/batch', body: { queries: [{ sids: [[1, 1]], topK: 5 }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'queries[0].topK', message: /^unknown field queries\[0\]\.topK \(allowed: embedding, sids, k, expand, beamWidth, rerank, maxCandidates\)$/ },
  { name: 'a long unknown key, quoted cut', url: '/v1/retrieve', body: { sids: [[1, 1]], ['x'.repeat(10_000)]: 1 }, code: 'SIDX_ERR_INVALID_INPUT', field: `${'x'.repeat(64)}...`, message: /^unknown field x{64}\.\.\. \(allowed: / },
  { name: 'missing item field', url: '/v1/items', body: { items: [{ id: 'a' }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items[0].embedding', message: /^items\[0\]\.embedding is required$/ },
  { name: 'missing encode field', url: '/v1/encode', body: { model: 'm' }, code: 'SIDX_ERR_INVALID_INPUT', field: 'embeddings', message: /^embeddings is required$/ },
  { name: 'id of the wrong type', url: '/v1/items', body: { items: [{ id: 7, embedding: good() }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items[0].id' },
  { name: 'empty id', url: '/v1/items', body: { items: [{ id: '', embedding: good() }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items[0].id' },
  { name: 'broken JSON', url: '/v1/items', raw: true, body: '{"items": [', code: 'SIDX_ERR_INVALID_INPUT' },
  // The upsert body's fast path (src/http/item-batch-body.ts): a raw control character is invalid JSON; in an id the
  // body goes to the general parser, in an embedding the decoder refuses the string.
  { name: 'a raw tab in an id', url: '/v1/items', raw: true, body: `{"items":[{"id":"a\tb","embedding":"${b64(good())}"}]}`, code: 'SIDX_ERR_INVALID_INPUT' },
  { name: 'a raw newline in base64', url: '/v1/items', raw: true, body: `{"items":[{"id":"a","embedding":"${b64(good()).slice(0, 8)}\n${b64(good()).slice(9)}"}]}`, code: 'SIDX_ERR_BASE64', field: 'items[0].embedding' },
  { name: 'a trailing comma in the batch', url: '/v1/items', raw: true, body: `{"items":[{"id":"a","embedding":"${b64(good())}"},]}`, code: 'SIDX_ERR_INVALID_INPUT' },
  { name: 'string where numbers belong', url: '/v1/encode', body: { embeddings: [['1', '2', '3', '4', '5', '6', '7', '8']] }, code: 'SIDX_ERR_INVALID_INPUT' },
  // An embedding is a number array or a base64 string: a value of another type is told both, and what it got.
  { name: 'a number as the embedding', url: '/v1/retrieve', body: { embedding: 5 }, code: 'SIDX_ERR_INVALID_INPUT', field: 'embedding', message: /^embedding must be a number array, or a base64 string of little-endian float32, got 5$/ },
  { name: 'an object as an item embedding', url: '/v1/items', body: { items: [{ id: 'a', embedding: { x: 1 } }] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'items[0].embedding', message: /^items\[0\]\.embedding must be a number array, or a base64 string of little-endian float32, got \{"x":1\}$/ },
  { name: 'null among the encode embeddings', url: '/v1/encode', body: { embeddings: [good(), null] }, code: 'SIDX_ERR_INVALID_INPUT', field: 'embeddings[1]', message: /^embeddings\[1\] must be a number array, or a base64 string of little-endian float32, got null$/ },
];

for (const c of cases) {
  test(`400 for ${c.name}, nothing written`, async () => {
    const beforeState = await state();
    const res = await svc.app.inject({
      method: 'POST',
      url: c.url,
      headers: { 'content-type': 'application/json' },
      payload: c.raw ? (c.body as string) : JSON.stringify(c.body),
    });
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json();
    assert.equal(body.code, c.code, res.body);
    assert.equal(body.statusCode, 400);
    assert.equal(typeof body.message, 'string');
    if (c.field) assert.equal(body.field, c.field, res.body);
    if (c.message) assert.match(body.message, c.message);
    assert.deepEqual(await state(), beforeState);
  });
}

test('the service refuses a batch the catalog would refuse before it encodes or writes it (callers beside the HTTP route)', async () => {
  const beforeState = await state();
  const vector = Float32Array.from(good());
  for (const [items, code] of [
    [[{ id: 'p', vector }, { id: 'p', vector }], 'SIDX_ERR_DUPLICATE_ID'],
    [[{ id: 'q', vector }, { id: '\uD800', vector }], 'SIDX_ERR_INVALID_INPUT'],
    [[{ id: 'r', vector: new Float32Array(DIM + 1) }], 'SIDX_ERR_DIMENSION'],
    [[{ id: 's', vector: Float32Array.of(...good().slice(1), Number.NaN) }], 'SIDX_ERR_NOT_FINITE'],
  ] as const) {
    await assert.rejects(svc.service.upsert(items.map((it) => ({ ...it }))), (err: { code?: string }) => err.code === code, code);
  }
  assert.deepEqual(await state(), beforeState);
});

test('unknown routes and items are JSON 404s', async () => {
  const route = await svc.app.inject({ method: 'GET', url: '/v1/nope' });
  assert.equal(route.statusCode, 404);
  assert.equal(route.json().code, 'SIDX_ERR_ROUTE_NOT_FOUND');
  const item = await svc.app.inject({ method: 'GET', url: '/v1/items/absent' });
  assert.equal(item.statusCode, 404);
  assert.equal(item.json().field, 'id');
});

test('a body not sent as application/json is a 415 that says what to send, and nothing is written', async () => {
  const beforeState = await state();
  const payload = JSON.stringify({ items: [{ id: 'typed', embedding: good() }] });
  const fix = 'send the body as JSON with content-type: application/json';
  for (const [type, message] of [
    // What `curl -d` sends without -H.
    ['application/x-www-form-urlencoded', `content-type application/x-www-form-urlencoded is not supported: ${fix} (curl -d sends application/x-www-form-urlencoded: add -H 'content-type: application/json')`],
    ['text/plain', `content-type text/plain is not supported: ${fix}`],
    ['text/plain; charset=utf-8', `content-type text/plain is not supported: ${fix}`],
    [undefined, `the body has no content-type: ${fix}`],
  ] as const) {
    const res = await svc.app.inject({ method: 'POST', url: '/v1/items', headers: type ? { 'content-type': type } : {}, payload });
    assert.equal(res.statusCode, 415, `${type}: ${res.body}`);
    assert.deepEqual(res.json(), { statusCode: 415, code: 'SIDX_ERR_INVALID_INPUT', error: 'Unsupported Media Type', message }, `${type}`);
  }
  assert.deepEqual(await state(), beforeState);
});

const pick = ({ code, field, message }: Record<string, unknown>) => ({ code, field, message });

test('query strings: an unknown parameter and a value outside an enum are named, with what is allowed', async () => {
  for (const [url, field, message] of [
    ['/v1/models?state=active', 'state', 'unknown field state (allowed: status)'],
    ['/v1/models?status=Active', 'status', 'status must be one of registered, active, retired'],
    ['/v1/sids/trie?format=xml', 'format', 'format must be one of binary, json'],
    ['/v1/sids/trie?since=abc', 'since', 'since must be a seq from an earlier answer, or its ETag "<version>.<seq>" without quotes, got "abc"'],
  ] as const) {
    const res = await svc.app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    assert.deepEqual(pick(res.json()), { code: 'SIDX_ERR_INVALID_INPUT', field, message }, url);
  }
});

test('activate and cancel take no body or {}: a field or a non-object is a 400, text a 415, and nothing changes', async () => {
  const model = svc.service.model.id;
  const listModels = async () => (await svc.app.inject({ method: 'GET', url: '/v1/models' })).json();
  const before = await listModels();
  for (const url of [`/v1/models/${model}/activate`, '/v1/jobs/no-such-job/cancel']) {
    for (const [payload, type, status, field, message] of [
      ['{"force":true}', 'application/json', 400, 'force', 'unknown field force (no fields are allowed)'],
      ['[]', 'application/json', 400, 'body', 'body must be object'], ['null', 'application/json', 400, 'body', 'body must be object'],
      ['activate please', 'text/plain', 415, undefined, 'content-type text/plain is not supported: send the body as JSON with content-type: application/json'],
    ] as const) {
      const res = await svc.app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });
      assert.equal(res.statusCode, status, `${url} ${payload}: ${res.body}`);
      assert.deepEqual(pick(res.json()), { code: 'SIDX_ERR_INVALID_INPUT', field, message }, res.body);
    }
  }
  assert.deepEqual(await listModels(), before);
  // Without a body, or with {}, the action runs: the served model is already active; the job does not exist.
  for (const payload of [undefined, {}]) {
    assert.equal((await svc.app.inject({ method: 'POST', url: `/v1/models/${model}/activate`, payload })).statusCode, 200);
    const cancel = await svc.app.inject({ method: 'POST', url: '/v1/jobs/no-such-job/cancel', payload });
    assert.equal(cancel.json().code, 'SIDX_ERR_JOB_NOT_FOUND', cancel.body);
  }
  const doc = (await svc.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  for (const path of ['/v1/models/{id}/activate', '/v1/jobs/{id}/cancel']) {
    const body = doc.paths[path].post.requestBody;
    assert.equal(body.required, false, `${path}: the body is optional`);
    assert.equal(body.content['application/json'].schema.additionalProperties, false, `${path}: no field is accepted`);
  }
});
