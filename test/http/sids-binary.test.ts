import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decodeNext } from '../../src/sid/next-format.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const LEVELS = 3;
const K = 4;
const MAX_BATCH = 64;
const BINARY = { accept: 'application/octet-stream' };

const tmp = tempDir();
const dataDir = join(tmp.dir, 'data');
const modelDir = join(tmp.dir, 'model');
let svc: RunningService;
/** What the API told us: id -> SID. */
const sids = new Map<string, number[]>();
let embedSeed = 500;

function next(payload: unknown, headers: Record<string, string> = {}) {
  return svc.app.inject({ method: 'POST', url: '/v1/sids/next', payload: payload as object, headers });
}

async function write(url: string, payload: object) {
  const res = await svc.app.inject({ method: 'POST', url, payload });
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

async function upsert(ids: string[]): Promise<void> {
  const vecs = randomMatrix(ids.length, DIM, embedSeed++);
  const items = ids.map((id, i) => ({ id, embedding: Array.from(vecs.subarray(i * DIM, (i + 1) * DIM)) }));
  for (const it of (await write('/v1/items', { items })).items) sids.set(it.id, it.sid);
}

/** Every prefix of every held SID, the root, a full-length SID nobody may hold, and repeats of each. */
function prefixes(): number[][] {
  const out: number[][] = [[], [K - 1, K - 1, K - 1], [0]];
  for (const sid of [...sids.values()].slice(0, 12)) for (let l = 0; l <= LEVELS; l++) out.push(sid.slice(0, l));
  return [...out, ...out.slice(0, 20)].slice(0, MAX_BATCH);
}

/** The binary answer decoded, checked against the JSON answer to the same request, and returned. */
async function sameAsJson(payload: { prefixes: number[][]; model?: string }) {
  const json = await next(payload);
  assert.equal(json.statusCode, 200, json.body);
  assert.match(String(json.headers['content-type']), /^application\/json/);
  const bin = await next(payload, BINARY);
  assert.equal(bin.statusCode, 200, bin.body);
  assert.equal(bin.headers['content-type'], 'application/octet-stream');
  const raw = bin.rawPayload;
  assert.equal(raw.toString('latin1', 0, 4), 'SIDN');
  assert.deepEqual([raw[4], raw[5], raw[6], raw[7]], [1, LEVELS, 2, 0], 'version, levels, code bytes, reserved');
  assert.equal(raw.readUInt32LE(8), payload.prefixes.length);
  const decoded = decodeNext(raw);
  const body = json.json();
  assert.equal(decoded.levels, body.levels);
  assert.deepEqual(decoded.next, body.next);
  // Unpadded: 12 + per prefix 4 + 6 m bytes.
  assert.equal(raw.length, 12 + body.next.reduce((a: number, e: { codes: number[] }) => a + 4 + 6 * e.codes.length, 0));
  return decoded;
}

before(async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: LEVELS, codebookSize: K, seed: 5 });
  svc = await startService(dataDir, modelDir, { maxBatch: MAX_BATCH });
  await upsert(Array.from({ length: 60 }, (_, i) => `item-${i}`));
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('binary next: the SIDN answer decodes to the JSON answer (mixed depths, full-length prefixes, repeats)', async () => {
  const ps = prefixes();
  const decoded = await sameAsJson({ prefixes: ps });
  const total = decoded.next[0]!.counts.reduce((a, b) => a + b, 0);
  assert.equal(total, sids.size, 'the root counts every item');
  ps.forEach((p, i) => {
    if (p.length === LEVELS) assert.deepEqual(decoded.next[i], { codes: [], counts: [] }, `full-length prefix [${p}]`);
  });
  assert.ok(ps.some((p) => p.length === LEVELS), 'the request has full-length prefixes');
  await sameAsJson({ prefixes: ps, model: svc.service.model.id });
  await sameAsJson({ prefixes: [[]] });
});

test('binary next: answers follow upserts and deletes (cached pieces are replaced)', async () => {
  const ps = prefixes();
  const before = await sameAsJson({ prefixes: ps });
  // Move some items to new SIDs, add some, delete some: the root's and several subtrees' entries change.
  await upsert(Array.from({ length: 30 }, (_, i) => `item-${i * 2}`));
  await upsert(Array.from({ length: 20 }, (_, i) => `new-${i}`));
  const gone = [...sids.keys()].filter((_, i) => i % 3 === 0);
  await write('/v1/items/delete', { ids: gone });
  for (const id of gone) sids.delete(id);
  const after = await sameAsJson({ prefixes: ps });
  assert.equal(after.next[0]!.counts.reduce((a, b) => a + b, 0), sids.size, 'the root counts the items left');
  assert.notDeepEqual(after.next[0], before.next[0], 'the root entry changed');
  // Delete everything: every prefix has nothing to extend.
  await write('/v1/items/delete', { ids: [...sids.keys()] });
  sids.clear();
  const empty = await sameAsJson({ prefixes: ps });
  assert.ok(empty.next.every((e) => e.codes.length === 0));
});

test('binary next: Accept negotiation; errors stay JSON 4xx naming the field', async () => {
  const type = async (accept: string) => String((await next({ prefixes: [[]] }, { accept })).headers['content-type']);
  assert.match(await type('application/json'), /^application\/json/);
  assert.match(await type('*/*'), /^application\/json/);
  assert.equal(await type('application/octet-stream, */*'), 'application/octet-stream');
  assert.equal(await type('Application/Octet-Stream'), 'application/octet-stream');
  assert.match(await type('application/json, application/octet-stream'), /^application\/json/);
  assert.equal(await type('application/json;q=0.5, application/octet-stream'), 'application/octet-stream');
  assert.match(await type('application/octet-stream;q=0'), /^application\/json/);

  const bad = async (payload: unknown, code: string, field: string, status = 400) => {
    const res = await next(payload, BINARY);
    assert.equal(res.statusCode, status, res.body);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.json().code, code);
    assert.equal(res.json().field, field);
  };
  await bad({ prefixes: [[0], [0, 0, 0, 0]] }, 'SIDX_ERR_INVALID_INPUT', 'prefixes[1]');
  await bad({ prefixes: [[0, K]] }, 'SIDX_ERR_INVALID_INPUT', 'prefixes[0][1]');
  await bad({ prefixes: [] }, 'SIDX_ERR_BATCH_EMPTY', 'prefixes');
  await bad({ prefixes: Array.from({ length: MAX_BATCH + 1 }, () => []) }, 'SIDX_ERR_BATCH_TOO_LARGE', 'prefixes');
  await bad({ prefixes: [[]], model: 'nope' }, 'SIDX_ERR_UNKNOWN_MODEL', 'model');
});
