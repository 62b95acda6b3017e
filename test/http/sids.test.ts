import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decodeTrie, type TrieMessage } from '../../src/sid/trie-format.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const LEVELS = 3;
const K = 4;
const MAX_BATCH = 40;

const tmp = tempDir();
const dataDir = join(tmp.dir, 'data');
const modelDir = join(tmp.dir, 'model');
let svc: RunningService;
/** What the API told us: id -> SID. */
const sids = new Map<string, number[]>();
/** seq -> occupied SIDs (text) right after that write. */
const snapshots = new Map<string, string[]>();
let embedSeed = 100;

const text = (s: ArrayLike<number>) => Array.from(s).join('-');
const byCodes = (a: string, b: string) => {
  const x = a.split('-').map(Number);
  const y = b.split('-').map(Number);
  const l = x.findIndex((c, i) => c !== y[i]);
  return l < 0 ? 0 : x[l]! - y[l]!;
};
const occupied = () => [...new Set([...sids.values()].map(text))].sort(byCodes);

async function post(url: string, payload: unknown) {
  const res = await svc.app.inject({ method: 'POST', url, payload: payload as object });
  return { status: res.statusCode, body: res.json() };
}

async function getTrie(query: string, headers: Record<string, string> = {}) {
  return svc.app.inject({ method: 'GET', url: `/v1/sids/trie${query}`, headers });
}

async function upsert(ids: string[]): Promise<string> {
  const vecs = randomMatrix(ids.length, DIM, embedSeed++);
  const items = ids.map((id, i) => ({ id, embedding: Array.from(vecs.subarray(i * DIM, (i + 1) * DIM)) }));
  const { status, body } = await post('/v1/items', { items });
  assert.equal(status, 200, JSON.stringify(body));
  for (const it of body.items) sids.set(it.id, it.sid);
  snapshots.set(body.seq, occupied());
  return body.seq as string;
}

async function remove(ids: string[]): Promise<void> {
  const { status } = await post('/v1/items/delete', { ids });
  assert.equal(status, 200);
  for (const id of ids) sids.delete(id);
  const tag = (await getTrie('?format=json')).json().seq as string;
  snapshots.set(tag, occupied());
}

const rowsOf = (flat: Uint16Array) => Array.from({ length: flat.length / LEVELS }, (_, i) => text(flat.subarray(i * LEVELS, (i + 1) * LEVELS)));

function applyDelta(before: string[], added: string[], removed: string[]): string[] {
  const set = new Set(before);
  for (const r of removed) assert.ok(set.delete(r), `removed ${r} was not occupied`);
  for (const a of added) {
    assert.ok(!set.has(a), `added ${a} was occupied`);
    set.add(a);
  }
  return [...set].sort(byCodes);
}

before(async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: LEVELS, codebookSize: K, seed: 3 });
  await writeTestBundle(join(tmp.dir, 'other'), { dim: DIM, levels: 2, codebookSize: K, seed: 9 });
  svc = await startService(dataDir, modelDir, { maxBatch: MAX_BATCH }, { model: { registryDir: tmp.dir } });
  snapshots.set((await getTrie('?format=json')).json().seq, []);
  for (let round = 0; round < 6; round++) {
    await upsert(Array.from({ length: MAX_BATCH }, (_, i) => `item-${(round * 17 + i) % 120}`));
    if (round % 2 === 1) await remove([...sids.keys()].filter((_, i) => i % 5 === round % 5).slice(0, 15));
  }
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

test('POST /v1/sids/next: codes and counts equal a brute-force count over the catalog', async () => {
  const prefixes: number[][] = [[]];
  for (const sid of sids.values()) for (let l = 1; l <= LEVELS; l++) prefixes.push(sid.slice(0, l));
  prefixes.push([K - 1, K - 1, K - 1], [0]);
  const unique = [...new Map(prefixes.map((p) => [text(p), p])).values()].slice(0, MAX_BATCH);
  const { status, body } = await post('/v1/sids/next', { prefixes: unique });
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.levels, LEVELS);
  assert.equal(body.model, svc.service.model.id);
  assert.equal(body.next.length, unique.length);
  unique.forEach((p, i) => {
    const counts = new Map<number, number>();
    if (p.length < LEVELS) {
      for (const sid of sids.values()) if (p.every((c, l) => sid[l] === c)) counts.set(sid[p.length]!, (counts.get(sid[p.length]!) ?? 0) + 1);
    }
    const want = [...counts.entries()].sort((a, b) => a[0] - b[0]);
    assert.deepEqual(body.next[i], { codes: want.map((e) => e[0]), counts: want.map((e) => e[1]) }, `prefix [${p}]`);
  });
  const named = await post('/v1/sids/next', { prefixes: [[]], model: svc.service.model.id });
  assert.deepEqual(named.body.next[0], body.next[0]);
});

test('GET /v1/sids/trie: binary and JSON full snapshots list the occupied SIDs; ETag and If-None-Match', async () => {
  const res = await getTrie('');
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  const msg: TrieMessage = decodeTrie(res.rawPayload);
  assert.equal(msg.kind, 'full');
  assert.equal(msg.levels, LEVELS);
  assert.equal(msg.since, 0n);
  assert.deepEqual(rowsOf(msg.added), occupied());
  assert.equal(res.rawPayload.toString('latin1', 0, 4), 'SIDT');
  assert.equal(res.rawPayload.length, 32 + 2 * LEVELS * occupied().length);
  const version = (await svc.app.inject({ method: 'GET', url: '/v1/models' })).json().models.find((m: { active: boolean }) => m.active).version;
  assert.equal(res.headers.etag, `"${version}.${msg.seq}"`);

  const json = (await getTrie('?format=json')).json();
  assert.deepEqual(json, { model: svc.service.model.id, levels: LEVELS, seq: msg.seq.toString(), kind: 'full', sids: occupied().map((s) => s.split('-').map(Number)) });

  const again = await getTrie('', { 'if-none-match': res.headers.etag as string });
  assert.equal(again.statusCode, 304);
  assert.equal(again.rawPayload.length, 0);
  assert.equal(again.headers.etag, res.headers.etag);
  assert.equal((await getTrie('', { 'if-none-match': `"${version}.0"` })).statusCode, 200, 'a stale tag gets the trie');
  await upsert(['fresh-1']);
  const after = await getTrie('', { 'if-none-match': res.headers.etag as string });
  assert.equal(after.statusCode, 200, 'a write changes the ETag');
  assert.notEqual(after.headers.etag, res.headers.etag);
});

test('GET /v1/sids/trie?since=: each delta applied to its snapshot gives the current SIDs, before and after a restart', async () => {
  const check = async (what: string) => {
    const now = occupied();
    for (const [seq, before] of snapshots) {
      const bin = decodeTrie((await getTrie(`?since=${seq}`)).rawPayload);
      assert.equal(bin.kind, 'delta', `${what}: since ${seq}`);
      assert.equal(bin.since, BigInt(seq));
      assert.deepEqual(applyDelta(before, rowsOf(bin.added), rowsOf(bin.removed)), now, `${what}: binary delta since ${seq}`);
      const json = (await getTrie(`?since=${seq}&format=json`)).json();
      assert.equal(json.kind, 'delta');
      assert.equal(json.since, seq);
      const rows = (r: number[][]) => r.map(text);
      assert.deepEqual(applyDelta(before, rows(json.added), rows(json.removed)), now, `${what}: JSON delta since ${seq}`);
    }
  };
  await check('live');
  const seqBefore = [...snapshots.keys()].at(-1)!;
  await svc.close();
  svc = await startService(dataDir, modelDir, { maxBatch: MAX_BATCH }, { model: { registryDir: tmp.dir } });
  await upsert(['after-restart-1', 'item-3']);
  await remove(['item-4']);
  await check('after restart');
  const delta = (await getTrie(`?since=${seqBefore}&format=json`)).json();
  assert.ok(delta.added.length + delta.removed.length > 0 || occupied().length === snapshots.get(seqBefore)!.length);

  const future = (await getTrie('?since=999999&format=json')).json();
  assert.equal(future.kind, 'full', 'a seq in the future gets a full snapshot');
  assert.deepEqual(future.sids.map(text), occupied());
  const version = (await getTrie('')).headers.etag!.toString().split('.')[0]!.slice(1);
  const other = (await getTrie(`?since=${Number(version) + 1}.${seqBefore}&format=json`)).json();
  assert.equal(other.kind, 'full', 'a seq read from another model version gets a full snapshot');
  assert.equal((await getTrie(`?since=${version}.${seqBefore}&format=json`)).json().kind, 'delta');
});

test('validation: 400s name the field, unknown and key-space-less models are refused, nothing is answered', async () => {
  const bad = async (payload: unknown, code: string, field: string | undefined, status = 400) => {
    const { status: s, body } = await post('/v1/sids/next', payload);
    assert.equal(s, status, JSON.stringify(body));
    assert.equal(body.code, code);
    assert.equal(body.field, field);
  };
  await bad({ prefixes: [[0], [0, 0, 0, 0]] }, 'SIDX_ERR_INVALID_INPUT', 'prefixes[1]');
  await bad({ prefixes: [[0, K]] }, 'SIDX_ERR_INVALID_INPUT', 'prefixes[0][1]');
  await bad({ prefixes: [[70000]] }, 'SIDX_ERR_INVALID_INPUT', 'prefixes[0][0]');
  await bad({ prefixes: [[-1]] }, 'SIDX_ERR_INVALID_INPUT', 'prefixes[0][0]');
  await bad({ prefixes: [] }, 'SIDX_ERR_BATCH_EMPTY', 'prefixes'); // as docs/sid-trie.md says
  await bad({ prefixes: Array.from({ length: MAX_BATCH + 1 }, () => []) }, 'SIDX_ERR_BATCH_TOO_LARGE', 'prefixes');
  await bad({ prefixes: [[]], extra: 1 }, 'SIDX_ERR_INVALID_INPUT', 'extra');
  await bad({ prefixes: [[]], model: 'nope' }, 'SIDX_ERR_UNKNOWN_MODEL', 'model');
  const reg = await post('/v1/models', { path: 'other' });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  await bad({ prefixes: [[]], model: reg.body.id }, 'SIDX_ERR_NO_KEY_SPACE', 'model', 409);

  const trieBad = async (query: string, code: string, field: string, status = 400) => {
    const res = await getTrie(query);
    assert.equal(res.statusCode, status, res.body);
    assert.equal(res.json().code, code);
    assert.equal(res.json().field, field);
  };
  await trieBad('?format=xml', 'SIDX_ERR_INVALID_INPUT', 'format');
  await trieBad('?since=-1', 'SIDX_ERR_INVALID_INPUT', 'since');
  await trieBad('?since=abc', 'SIDX_ERR_INVALID_INPUT', 'since');
  await trieBad('?model=nope', 'SIDX_ERR_UNKNOWN_MODEL', 'model');
  await trieBad(`?model=${reg.body.id}`, 'SIDX_ERR_NO_KEY_SPACE', 'model', 409);
  await trieBad('?mode=full', 'SIDX_ERR_INVALID_INPUT', 'mode');
});
