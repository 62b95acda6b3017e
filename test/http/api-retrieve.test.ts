import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { dot, randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 16;
const LEVELS = 3;
const K = 8;
const N = 10_000;
const BATCH = 2_000;

const tmp = tempDir();
let svc: RunningService;
const vectors = randomMatrix(N, DIM, 7);
const sids = new Map<string, number[]>();
const vectorOf = (i: number) => vectors.subarray(i * DIM, (i + 1) * DIM);

function hamming(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
  return d;
}

function bruteForce(query: readonly number[], distance: number): Set<string> {
  const out = new Set<string>();
  for (const [id, sid] of sids) if (hamming(sid, query) === distance) out.add(id);
  return out;
}

async function post(url: string, payload: unknown) {
  const res = await svc.app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json() };
}

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: LEVELS, codebookSize: K, seed: 1 });
  svc = await startService(join(tmp.dir, 'data'), modelDir, { maxBatch: BATCH, maxK: N, maxCandidates: N });
  for (let start = 0; start < N; start += BATCH) {
    const items = [];
    for (let i = start; i < start + BATCH; i++) items.push({ id: `item-${i}`, embedding: Array.from(vectorOf(i)) });
    const { status, body } = await post('/v1/items', { items });
    assert.equal(status, 200, JSON.stringify(body));
    for (const it of body.items) sids.set(it.id, it.sid);
  }
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('upserted items are all indexed in LMDB and FAISS', async () => {
  const res = await svc.app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual({ items: res.json().items, vectors: res.json().vectors }, { items: N, vectors: N });
  assert.equal(sids.size, N);
});

test('encode gives the SIDs that upsert assigned', async () => {
  const ids = [0, 17, 4242, 9999];
  const { status, body } = await post('/v1/encode', { embeddings: ids.map((i) => Array.from(vectorOf(i))) });
  assert.equal(status, 200);
  assert.deepEqual(body.sids, ids.map((i) => sids.get(`item-${i}`)));
});

test('retrieve by embedding returns k items sorted by score, scores equal a brute-force inner product', async () => {
  const queries = randomMatrix(20, DIM, 99);
  for (let q = 0; q < 20; q++) {
    const query = queries.subarray(q * DIM, (q + 1) * DIM);
    const { status, body } = await post('/v1/retrieve', { embedding: Array.from(query), k: 10, expand: 'hamming1', maxCandidates: N });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.items.length, Math.min(10, body.candidates.total));
    for (let i = 0; i < body.items.length; i++) {
      const it = body.items[i];
      const index = Number(it.id.slice('item-'.length));
      const expected = dot(query, vectorOf(index));
      assert.ok(Math.abs(it.score - expected) <= 1e-4 * Math.max(1, Math.abs(expected)), `${it.id}: ${it.score} vs ${expected}`);
      if (i > 0) assert.ok(body.items[i - 1].score >= it.score, 'sorted by score, descending');
      assert.deepEqual(it.sid, sids.get(it.id));
      assert.equal(hamming(it.sid, body.querySids[0]), it.match === 'exact' ? 0 : 1);
    }
    // The returned items are the best-scoring among all exact + Hamming-1 candidates.
    const pool = [...bruteForce(body.querySids[0], 0), ...bruteForce(body.querySids[0], 1)];
    const best = pool
      .map((id) => dot(query, vectorOf(Number(id.slice(5)))))
      .sort((a, b) => b - a)
      .slice(0, 10);
    assert.equal(body.candidates.total, pool.length);
    body.items.forEach((it: { score: number }, i: number) => assert.ok(Math.abs(it.score - best[i]!) < 1e-4));
  }
});

test('hamming1 expansion finds exactly the brute-force exact and Hamming-1 sets', async () => {
  for (const probe of ['item-3', 'item-500', 'item-7777']) {
    const sid = sids.get(probe)!;
    const { status, body } = await post('/v1/retrieve', { sids: [sid], k: N, expand: 'hamming1', maxCandidates: N });
    assert.equal(status, 200);
    const exact = new Set(body.items.filter((it: { match: string }) => it.match === 'exact').map((it: { id: string }) => it.id));
    const h1 = new Set(body.items.filter((it: { match: string }) => it.match === 'hamming1').map((it: { id: string }) => it.id));
    assert.deepEqual(exact, bruteForce(sid, 0));
    assert.deepEqual(h1, bruteForce(sid, 1));
    assert.ok(h1.size > 0);
    assert.deepEqual({ exact: body.candidates.exact, hamming1: body.candidates.hamming1 }, { exact: exact.size, hamming1: h1.size });
    assert.ok(body.items.every((it: { score: unknown }) => it.score === null), 'no rerank without an embedding');
  }
});

test('a beam keeps beam order without rerank, and expand none never adds neighbours', async () => {
  const a = sids.get('item-1')!;
  const b = sids.get('item-2')!;
  const { body } = await post('/v1/retrieve', { sids: [b, a], k: N, expand: 'none', maxCandidates: N });
  const inB = bruteForce(b, 0);
  const inA = bruteForce(a, 0);
  const ids: string[] = body.items.map((it: { id: string }) => it.id);
  assert.deepEqual(new Set(ids.slice(0, inB.size)), inB);
  assert.deepEqual(new Set(ids.slice(inB.size)), new Set([...inA].filter((id) => !inB.has(id))));
  assert.equal(body.candidates.hamming1, 0);
});

test('maxCandidates caps the candidate set and auto expands only when exact matches are fewer than k', async () => {
  const sid = sids.get('item-9')!;
  const exactCount = bruteForce(sid, 0).size;
  const few = await post('/v1/retrieve', { sids: [sid], k: exactCount, expand: 'auto' });
  assert.equal(few.body.candidates.hamming1, 0);
  const more = await post('/v1/retrieve', { sids: [sid], k: exactCount + 1, expand: 'auto' });
  assert.ok(more.body.candidates.hamming1 > 0);
  const capped = await post('/v1/retrieve', { sids: [sid], k: exactCount + 10, expand: 'hamming1', maxCandidates: exactCount + 3 });
  assert.equal(capped.body.candidates.total, exactCount + 3);
});

test('without a rerank gathering stops at k: the items are the first k of the whole budget\'s, the counts at most k', async () => {
  const given = [sids.get('item-9')!, sids.get('item-1')!];
  const exactCount = new Set([...bruteForce(given[0]!, 0), ...bruteForce(given[1]!, 0)]).size;
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['sids, auto', { sids: given, expand: 'auto' }, exactCount + 5],
    ['sids, hamming1', { sids: given, expand: 'hamming1' }, exactCount + 5],
    ['sids, none', { sids: given, expand: 'none' }, 3],
  ];
  for (const [what, body, k] of cases) {
    const whole = await post('/v1/retrieve', { ...body, k: N, maxCandidates: N });
    const first = await post('/v1/retrieve', { ...body, k, maxCandidates: N });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.ok(whole.body.candidates.total > k, `${what}: the whole budget gathers more than k (${JSON.stringify(whole.body.candidates)}, k ${k})`);
    assert.deepEqual(first.body.items, whole.body.items.slice(0, k), what);
    assert.equal(first.body.candidates.total, k, what);
  }
  const reranked = await post('/v1/retrieve', { embedding: Array.from(vectorOf(11)), expand: 'hamming1', k: 5, maxCandidates: 1000 });
  assert.ok(reranked.body.candidates.total > 5, 'with a rerank the whole budget is gathered and scored');
});

test('delete removes items from LMDB and FAISS', async () => {
  const victims = ['item-10', 'item-11', 'item-12'];
  const sid = sids.get('item-10')!;
  const { status, body } = await post('/v1/items/delete', { ids: [...victims, 'no-such-item'] });
  assert.equal(status, 200);
  assert.deepEqual(body, { deleted: 3, missing: ['no-such-item'] });
  for (const id of victims) {
    const res = await svc.app.inject({ method: 'GET', url: `/v1/items/${id}` });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().code, 'SIDX_ERR_NOT_FOUND');
    sids.delete(id);
  }
  const after = await post('/v1/retrieve', { sids: [sid], k: N, expand: 'hamming1', maxCandidates: N });
  assert.ok(after.body.items.every((it: { id: string }) => !victims.includes(it.id)));
  const ready = (await svc.app.inject({ method: 'GET', url: '/readyz' })).json();
  assert.deepEqual({ items: ready.items, vectors: ready.vectors }, { items: N - 3, vectors: N - 3 });
  const q = await post('/v1/retrieve', { embedding: Array.from(vectorOf(10)), k: 50, expand: 'hamming1' });
  assert.ok(q.body.items.every((it: { id: string }) => !victims.includes(it.id)));
});

test('re-upsert replaces an item: new vector, new SID, old postings gone', async () => {
  const id = 'item-20';
  const old = sids.get(id)!;
  const replacement = Array.from(vectorOf(21));
  const { body } = await post('/v1/items', { items: [{ id, embedding: replacement }] });
  assert.equal(body.items[0].replaced, true);
  assert.deepEqual(body.items[0].sid, sids.get('item-21'));
  sids.set(id, body.items[0].sid);
  const got = (await svc.app.inject({ method: 'GET', url: `/v1/items/${id}` })).json();
  assert.deepEqual(got.sid, body.items[0].sid);
  if (hamming(old, body.items[0].sid) > 0) {
    const atOld = await post('/v1/retrieve', { sids: [old], k: N, expand: 'none', maxCandidates: N });
    assert.ok(atOld.body.items.every((it: { id: string }) => it.id !== id));
  }
  const q = await post('/v1/retrieve', { embedding: replacement, k: 3 });
  const hit = q.body.items.find((it: { id: string }) => it.id === id);
  assert.ok(hit, 'found by its new vector');
  assert.ok(Math.abs(hit.score - dot(Float32Array.from(replacement), vectorOf(21))) < 1e-4);
  const ready = (await svc.app.inject({ method: 'GET', url: '/readyz' })).json();
  assert.equal(ready.vectors, ready.items, 'replacing does not duplicate the FAISS entry');
});

test('a request that names no maxCandidates is never refused for it: its budget is at most limits.maxCandidates', async () => {
  const modelDir = join(tmp.dir, 'model');
  const small = await startService(join(tmp.dir, 'data-small-cap'), modelDir, { maxK: 50, maxCandidates: 5 });
  try {
    const items = Array.from({ length: 40 }, (_, i) => ({ id: `c${i}`, embedding: Array.from(vectorOf(i)) }));
    const upserted = await small.app.inject({ method: 'POST', url: '/v1/items', payload: { items } });
    assert.equal(upserted.statusCode, 200, upserted.body);
    const res = await small.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(vectorOf(3)), k: 10, expand: 'hamming1' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(res.json().candidates.total <= 5, res.body);
    const named = await small.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(vectorOf(3)), k: 10, maxCandidates: 6 } });
    assert.equal(named.statusCode, 400, 'a budget the request names is still checked');
    assert.equal(named.json().field, 'maxCandidates');
  } finally {
    await small.close();
  }
});
