import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { JSON_TYPE, retrieveAnswerJson } from '../../src/http/retrieve-json.ts';
import { sidList } from '../../src/http/routes/service.ts';
import type { RetrieveOutput } from '../../src/service/types.ts';
import { tempDir } from '../helpers/paths.ts';
import { retrieveSchemaJson } from '../helpers/schema-json.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { seededUniform } from '../../src/random.ts';

const viaSchema = retrieveSchemaJson;

function answer(seed: number, over: Partial<RetrieveOutput> = {}): RetrieveOutput {
  const rand = seededUniform(seed);
  const sid = () => Int32Array.from({ length: 1 + Math.floor(rand() * 4) }, () => Math.floor(rand() * 65536));
  const score = () => [null, 0, -0, rand(), -rand() * 1e-9, rand() * 1e21, 1 / 3, -7][Math.floor(rand() * 8)]!;
  const ids = ['item-1', 'ß-ünïcødé-🙂', 'quote " and \\ backslash', 'tab\tnewline\ncontrol\u0001', '</script>', '', '\u2028\u2029'];
  return {
    model: `model "${seed}"`,
    expand: (['none', 'hamming1', 'auto', 'beam'] as const)[seed % 4]!,
    items: Array.from({ length: Math.floor(rand() * 12) }, (_, i) => ({
      id: ids[(i + seed) % ids.length]!, score: score(), sid: sid(), match: (['exact', 'hamming1', 'beam', 'prefix'] as const)[i % 4]!,
    })),
    querySids: Array.from({ length: Math.floor(rand() * 40) }, sid),
    candidates: { exact: 3, hamming1: 0, beam: 120, prefix: 1127, total: 1250 },
    timingsMs: { encode: 0, beam: 0.35147584599997206, candidates: 1e-7, rerank: 0.2898, fetch: 12, total: 123456.789 },
    ...over,
  };
}

test('retrieveAnswerJson writes what the response schema\'s serializer writes, to the character', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const out = answer(seed, seed % 5 === 0 ? { missingShards: seed % 10 === 0 ? [] : [0, 3] } : {});
    assert.equal(retrieveAnswerJson(out), viaSchema(out), `seed ${seed}`);
    assert.deepEqual(JSON.parse(retrieveAnswerJson(out)).querySids, out.querySids.map(sidList));
  }
  const empty = answer(7, { items: [], querySids: [] });
  assert.equal(retrieveAnswerJson(empty), viaSchema(empty));
});

test('a non-finite score (the ranking leaves such candidates out) is written as null, not refused with a 500', () => {
  const out = answer(3, { items: [{ id: 'a', score: Number.POSITIVE_INFINITY, sid: Int32Array.of(1, 2), match: 'exact' }] });
  assert.equal(JSON.parse(retrieveAnswerJson(out)).items[0].score, null);
  assert.throws(() => viaSchema(out), /does not match schema/);
});

test('a count or timing that is not a number throws (Fastify answers 500) instead of writing invalid JSON', () => {
  assert.throws(() => retrieveAnswerJson(answer(4, { candidates: { exact: Number.NaN, hamming1: 0, beam: 0, prefix: 0, total: 0 } })), /integer/);
  assert.throws(() => retrieveAnswerJson(answer(4, { candidates: { exact: 1.5, hamming1: 0, beam: 0, prefix: 0, total: 0 } })), /integer/);
  const t = answer(4).timingsMs;
  assert.throws(() => retrieveAnswerJson(answer(4, { timingsMs: { ...t, fetch: Number.POSITIVE_INFINITY } })), /number/);
  assert.throws(() => retrieveAnswerJson(answer(4, { missingShards: [Number.NaN] })), /integer/);
});

const tmp = tempDir();
let svc: RunningService;
const DIM = 16;

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 3, codebookSize: 8, seed: 1 });
  svc = await startService(join(tmp.dir, 'data'), modelDir);
  const vectors = randomMatrix(300, DIM, 5);
  const items = Array.from({ length: 300 }, (_, i) => ({ id: `item-${i}`, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items } });
  assert.equal(res.statusCode, 200, res.body);
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('POST /v1/retrieve answers JSON with Fastify\'s JSON content type, the service output as the schema writes it', async () => {
  const query = Array.from(randomMatrix(1, DIM, 9));
  for (const payload of [{ embedding: query, k: 5 }, { embedding: query, k: 5, expand: 'hamming1', rerank: false }, { sids: [[1, 2, 3], [0, 0, 0]], k: 3 }]) {
    const res = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], JSON_TYPE);
    const body = res.json() as { items: Array<{ id: string; sid: number[] }>; querySids: number[][]; timingsMs: Record<string, number> };
    assert.ok(body.items.length > 0 && body.items.every((it) => it.id.startsWith('item-') && it.sid.length === 3), res.body);
    assert.ok(body.querySids.length > 0 && body.querySids.every((s) => s.length === 3));
    assert.equal(typeof body.timingsMs.total, 'number');
    const again = viaSchema({ ...body, items: body.items.map((it) => ({ ...it, sid: Int32Array.from(it.sid) })), querySids: body.querySids.map((s) => Int32Array.from(s)) } as unknown as RetrieveOutput);
    assert.equal(res.body, again);
  }
  const bad = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { sids: [[1, 2]] } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().code, 'SIDX_ERR_INVALID_INPUT');
});
