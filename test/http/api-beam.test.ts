import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { beamReference } from '../../src/numeric/beam-graph.ts';
import { tempDir } from '../helpers/paths.ts';
import { dot, randomMatrix } from '../helpers/random.ts';
import { startService, upsertRows, writeBeamBundle, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 12;
const LEVELS = 3;
const K = 8;
const N = 3000;

const tmp = tempDir();
let svc: RunningService;
const vectors = randomMatrix(N, DIM, 21);
const vectorOf = (i: number) => vectors.subarray(i * DIM, (i + 1) * DIM);
const codebooks = Array.from({ length: LEVELS }, (_, l) => randomMatrix(K, DIM, 40 + l, 0.5 ** l));
const sidOf: number[][] = [];

async function post(url: string, payload: unknown) {
  const res = await svc.app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json() };
}

const compare = (a: readonly number[], b: readonly number[]) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
};

/** The encoder's SID for `query` (what an upsert of it would get). */
async function ownSid(query: Float32Array): Promise<number[]> {
  const { status, body } = await post('/v1/encode', { embeddings: [Array.from(query)] });
  assert.equal(status, 200, JSON.stringify(body));
  return body.sids[0];
}

/**
 * The candidate list the service should build, from the query's own SID, a JS beam (partial inner product: an ip
 * model) and the SIDs the upserts returned: the own SID's items first (insertion order), then final-level beam SIDs
 * in beam order, then shorter prefixes deepest first; within a SID or prefix, items in SID order then insertion
 * (key) order; each item once; at most `budget`.
 */
function expectedCandidates(query: Float32Array, width: number, budget: number, own: number[]): { index: number; match: string }[] {
  const beam = beamReference(Float64Array.from(query), codebooks, DIM, width, 0);
  const out: { index: number; match: string }[] = [];
  const seen = new Set<number>();
  sidOf.forEach((sid, i) => {
    if (out.length >= budget || compare(sid, own) !== 0) return;
    seen.add(i);
    out.push({ index: i, match: 'exact' });
  });
  for (let l = LEVELS; l >= 1 && out.length < budget; l--) {
    for (const prefix of beam[l - 1]!.codes) {
      const under = sidOf.map((sid, i) => ({ sid, i })).filter(({ sid }) => compare(sid.slice(0, l), prefix) === 0)
        .sort((a, b) => compare(a.sid, b.sid) || a.i - b.i);
      for (const { i } of under) {
        if (out.length >= budget) break;
        if (seen.has(i)) continue;
        seen.add(i);
        out.push({ index: i, match: l === LEVELS ? 'beam' : 'prefix' });
      }
    }
  }
  return out;
}

before(async () => {
  const modelDir = join(tmp.dir, 'model');
  await writeBeamBundle(modelDir, 'beam-test', DIM, codebooks, K);
  svc = await startService(join(tmp.dir, 'data'), modelDir, { maxBatch: N, maxK: N, maxCandidates: N });
  sidOf.push(...await upsertRows(svc.app, vectors, DIM, N, N));
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('expand "beam" gathers the beam\'s cells in order within the budget and reranks them by exact score', async () => {
  for (const [q, width, budget] of [[0, 4, 60], [1, 16, 200], [2, 2, 500], [3, 64, 25]] as const) {
    const query = randomMatrix(1, DIM, 500 + q);
    const own = await ownSid(query);
    const want = expectedCandidates(query, width, budget, own);
    const k = 20;
    const { status, body } = await post('/v1/retrieve', {
      embedding: Array.from(query), k, expand: 'beam', beamWidth: width, maxCandidates: budget,
    });
    assert.equal(status, 200, JSON.stringify(body));
    const c = body.candidates;
    assert.ok(c.total <= budget, `budget ${budget}: ${c.total} candidates`);
    assert.equal(c.total, want.length);
    const count = (match: string) => want.filter((w) => w.match === match).length;
    assert.deepEqual([c.beam, c.prefix, c.exact, c.hamming1], [count('beam'), count('prefix'), count('exact'), 0]);
    const ranked = want.map((w) => ({ ...w, score: dot(query, vectorOf(w.index)) })).sort((a, b) => b.score - a.score).slice(0, k);
    assert.deepEqual(body.items.map((it: { id: string }) => it.id), ranked.map((r) => `item-${r.index}`));
    body.items.forEach((it: { score: number; match: string; sid: number[] }, i: number) => {
      assert.ok(Math.abs(it.score - ranked[i]!.score) < 1e-4, `score of ${ranked[i]!.index}`);
      assert.equal(it.match, ranked[i]!.match);
      assert.deepEqual(it.sid, sidOf[ranked[i]!.index]);
    });
    const beamSids = beamReference(Float64Array.from(query), codebooks, DIM, width, 0)[LEVELS - 1]!.codes;
    assert.deepEqual(body.querySids, [own, ...beamSids.filter((sid) => compare(sid, own) !== 0)], 'querySids = own SID, then the final-level beam');
  }
});

test('expand "beam" without rerank keeps candidate order and returns null scores', async () => {
  const query = randomMatrix(1, DIM, 900);
  const want = expectedCandidates(query, 8, 40, await ownSid(query));
  const { body } = await post('/v1/retrieve', {
    embedding: Array.from(query), k: 40, expand: 'beam', beamWidth: 8, maxCandidates: 40, rerank: false,
  });
  assert.deepEqual(body.items.map((it: { id: string }) => it.id), want.map((w) => `item-${w.index}`));
  assert.ok(body.items.every((it: { score: unknown }) => it.score === null));
  // A budget past k: the same first k (gathering stops there; the counts say so).
  const wide = await post('/v1/retrieve', { embedding: Array.from(query), k: 12, expand: 'beam', beamWidth: 8, maxCandidates: 400, rerank: false });
  assert.deepEqual(wide.body.items.map((it: { id: string }) => it.id), want.slice(0, 12).map((w) => `item-${w.index}`));
  assert.equal(wide.body.candidates.total, 12);
});

test('given sids come first, then the query\'s own SID, then the beam', async () => {
  const query = randomMatrix(1, DIM, 901);
  const sid = sidOf[7]!;
  const { body } = await post('/v1/retrieve', {
    embedding: Array.from(query), sids: [sid], k: 50, expand: 'beam', beamWidth: 4, maxCandidates: 50, rerank: false,
  });
  const own = await ownSid(query);
  assert.notDeepEqual(own, sid);
  const exact = sidOf.filter((s) => compare(s, sid) === 0 || compare(s, own) === 0).length;
  assert.equal(body.candidates.exact, exact);
  assert.equal(body.items[0].match, 'exact');
  assert.deepEqual(body.items[0].sid, sid, 'given sids first');
  assert.deepEqual(body.querySids, [sid, own], 'given sids, then the query\'s own SID');
});

test('bad beam requests get a 400 naming the field', async () => {
  const embedding = Array.from(vectorOf(0));
  const cases: [Record<string, unknown>, string][] = [
    [{ embedding, expand: 'beam', beamWidth: 0 }, 'beamWidth'],
    [{ embedding, expand: 'beam', beamWidth: 5000 }, 'beamWidth'],
    [{ embedding, expand: 'beam', beamWidth: 2.5 }, 'beamWidth'],
    [{ embedding, expand: 'beam', beamWidth: '8' }, 'beamWidth'],
    [{ embedding, expand: 'hamming1', beamWidth: 8 }, 'beamWidth'],
    [{ sids: [sidOf[0]], beamWidth: 8 }, 'beamWidth'],
    [{ sids: [sidOf[0]], expand: 'beam' }, 'embedding'],
    [{ embedding, expand: 'beams' }, 'expand'],
    [{ embedding, expand: 'beam', maxCandidates: 0 }, 'maxCandidates'],
  ];
  for (const [payload, field] of cases) {
    const { status, body } = await post('/v1/retrieve', payload);
    assert.equal(status, 400, JSON.stringify(payload));
    assert.equal(body.code, 'SIDX_ERR_INVALID_INPUT');
    assert.equal(body.field, field, `${JSON.stringify(payload)} -> ${JSON.stringify(body)}`);
  }
});

test('without expand, a query embedding on a model with beam.onnx uses the beam; sids alone use auto', async () => {
  const query = Array.from(vectorOf(5));
  const implicit = await post('/v1/retrieve', { embedding: query, k: 10 });
  const explicit = await post('/v1/retrieve', { embedding: query, k: 10, expand: 'beam' });
  assert.equal(implicit.status, 200, JSON.stringify(implicit.body));
  assert.equal(implicit.body.expand, 'beam');
  assert.equal(explicit.body.expand, 'beam');
  assert.deepEqual(implicit.body.items, explicit.body.items);
  const c = implicit.body.candidates;
  assert.equal(c.exact + c.beam + c.prefix, c.total);
  assert.ok(c.exact >= 1, 'the query item\'s own SID cell is matched exactly');
  const widened = await post('/v1/retrieve', { embedding: query, k: 10, beamWidth: 4 });
  assert.equal(widened.status, 200, JSON.stringify(widened.body));
  assert.equal(widened.body.expand, 'beam');
  const bySids = await post('/v1/retrieve', { sids: [sidOf[5]], k: 10 });
  assert.equal(bySids.status, 200, JSON.stringify(bySids.body));
  assert.equal(bySids.body.expand, 'auto');
  assert.equal((await post('/v1/retrieve', { embedding: query, expand: 'auto' })).body.expand, 'auto');
});

test('a model without beam.onnx answers expand "beam" with a 400 naming expand', async () => {
  const dir = tempDir();
  const modelDir = join(dir.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 });
  const other = await startService(join(dir.dir, 'data'), modelDir);
  try {
    const res = await other.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(vectorOf(0)), expand: 'beam' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().field, 'expand');
    const implicit = await other.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(vectorOf(0)) } });
    assert.equal(implicit.statusCode, 200, implicit.body);
    assert.equal(implicit.json().expand, 'auto', 'without beam.onnx the default is auto');
    const widened = await other.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: Array.from(vectorOf(0)), beamWidth: 4 } });
    assert.equal(widened.statusCode, 400);
    assert.equal(widened.json().field, 'beamWidth');
  } finally {
    await other.close();
    dir.cleanup();
  }
});
