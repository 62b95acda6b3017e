/**
 * GET /v1/sids/trie on a cluster router (src/cluster/router-sids.ts) with real processes: a local `nats-server -js`,
 * shard replicas and a router as `sidx serve` children, and a single node beside them on the same items. Skipped
 * where nats-server is not installed (scripts/setup.sh installs it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { natsServerMissing, startNatsServer } from '../../src/bench/nats-server.ts';
import { RouterSids, unionSids } from '../../src/cluster/router-sids.ts';
import { ShardTrie } from '../../src/cluster/shard-sids.ts';
import { shardQueue, trieSubject } from '../../src/cluster/wire.ts';
import { decodeTrie } from '../../src/sid/trie-format.ts';
import { b64, clusterDir, json } from '../helpers/cluster.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { exited, type ServerProcess } from '../helpers/server-process.ts';
import { writeTestBundle } from '../helpers/service.ts';

const DIM = 32;
const LEVELS = 3;
const N = 600;

test('unionSids: the sorted union of sorted SID lists, each SID once', () => {
  const L = 2;
  const a = Uint16Array.from([0, 1, 0, 5, 3, 2]);
  const b = Uint16Array.from([0, 5, 1, 0, 3, 2, 9, 9]);
  assert.deepEqual(Array.from(unionSids(a, b, L)), [0, 1, 0, 5, 1, 0, 3, 2, 9, 9]);
  assert.deepEqual(Array.from(unionSids(new Uint16Array(0), b, L)), Array.from(b));
  assert.deepEqual(Array.from(unionSids(a, new Uint16Array(0), L)), Array.from(a));
  assert.deepEqual(Array.from(unionSids(a, a, L)), Array.from(a));
});

test('a shard\'s trie crosses NATS in many chunks under max_payload and comes out whole and in order', { skip: natsServerMissing(), timeout: 30_000 }, async (t) => {
  const { dir, cleanup } = tempDir('sidx-trie-chunks-');
  const nats = await startNatsServer(join(dir, 'js'));
  const [shardConn, routerConn] = await Promise.all([connect({ servers: nats.url }), connect({ servers: nats.url })]);
  t.after(async () => {
    await Promise.all([shardConn.close(), routerConn.close()]);
    nats.child.kill('SIGKILL');
    cleanup();
  });
  const L = 3;
  const n = 5000; // 30,000 bytes of codes: 470 chunks of 64 bytes
  const added = new Uint16Array(n * L);
  for (let i = 0; i < n; i++) added.set([i >> 8, i & 255, (i * 7) % 16], i * L);
  const model = { id: 'm', version: 1, levels: L };
  const service = { sids: { trie: () => ({ model: 'm', version: 1, levels: L, seq: 9n, kind: 'full', since: 0n, added, removed: new Uint16Array(0) }) } };
  const shard = new ShardTrie(service as never, 64);
  shardConn.subscribe(trieSubject(0), { queue: shardQueue(0), callback: (_err, msg) => shard.streamTrie(msg) });
  await shardConn.flush();
  const router = new RouterSids({
    nc: routerConn, shards: 1, timeoutMs: 5000, served: () => model as never, version: async () => 1,
    askAll: () => Promise.reject(new Error('not asked')),
  });
  const out = await router.trie();
  assert.equal(out.levels, L);
  assert.deepEqual(Array.from(out.added), Array.from(added));
});

const trieOf = async (s: ServerProcess, headers: Record<string, string> = {}, query = '') => {
  const res = await fetch(`${s.url}/v1/sids/trie${query}`, { headers });
  return { status: res.status, etag: res.headers.get('etag'), body: Buffer.from(await res.arrayBuffer()) };
};

/** The trie's SIDs as "a.b.c" strings (decoded from the binary answer). */
const sidsOf = (body: Buffer) => {
  const t = decodeTrie(body);
  return Array.from({ length: t.added.length / t.levels }, (_, i) => Array.from(t.added.subarray(i * t.levels, (i + 1) * t.levels)).join('.'));
};

test('a router\'s SID trie is the union of its shards\': the single node\'s SIDs (binary and JSON) and counts, an ETag that moves only with the SIDs, a 503 without a shard', { skip: natsServerMissing(), timeout: 240_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-sids-');
  await writeTestBundle(join(dir, 'm'), { dim: DIM, levels: LEVELS, codebookSize: 16, seed: 5 });
  const cluster = await start(join(dir, 'm'), { SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '5000', SIDX__LIMITS__MAX_BATCH: '1000' });
  const [r0a, r0b, r1a] = await Promise.all([cluster.replica(0, 2, 'a'), cluster.replica(0, 2, 'b'), cluster.replica(1, 2, 'a')]);
  const router = await cluster.serve(['--role', 'router', '--shard', '0/2'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });
  const single = await cluster.serve(['--data-dir', join(dir, 'single')]);

  const vectors = randomMatrix(N, DIM, 21);
  const items = Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: b64(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  for (const s of [router, single]) {
    for (let from = 0; from < N; from += 200) {
      const res = await json(`${s.url}/v1/items`, 'POST', { items: items.slice(from, from + 200) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
  }
  // waitApplied covers one replica of each shard; 0b may lag: wait until it holds what 0a does.
  const held = async (s: ServerProcess) => (await json(`${s.url}/readyz`)).body.items as number;
  while ((await held(r0b)) !== (await held(r0a))) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await held(r0a)) + (await held(r1a)), N, 'the items are spread over both shards');

  // Binary: the same SIDs as the single node (the seq differs: a digest of the shards' tries on a router).
  const fromRouter = await trieOf(router);
  const fromSingle = await trieOf(single);
  assert.equal(fromRouter.status, 200, fromRouter.body.toString());
  const rt = decodeTrie(fromRouter.body);
  const st = decodeTrie(fromSingle.body);
  assert.deepEqual({ ...rt, seq: 0n }, { ...st, seq: 0n });
  assert.ok(rt.added.length / LEVELS > 100, 'many occupied SIDs');
  assert.ok(sidsOf(fromRouter.body).length > Math.max(...(await Promise.all([r0a, r1a].map(async (s) => sidsOf((await trieOf(s)).body).length)))),
    'neither shard alone holds them all');
  assert.equal(fromRouter.etag, `"${(await json(`${router.url}/v1/models`)).body.models[0].version}.${rt.seq}"`, 'ETag "<registry version>.<seq>"');

  // JSON: the same document but for seq.
  const jsonTrie = async (s: ServerProcess) => {
    const { status, body } = await json(`${s.url}/v1/sids/trie?format=json`);
    assert.equal(status, 200, JSON.stringify(body));
    return { ...body, seq: undefined };
  };
  assert.deepEqual(await jsonTrie(router), await jsonTrie(single));

  // Counts: POST /v1/sids/next at every occupied (L-1)-prefix gives each SID's item count, summed over the shards.
  const sids = sidsOf(fromSingle.body).map((s) => s.split('.').map(Number));
  const prefixes = [[], ...[...new Set(sids.map((s) => s.slice(0, LEVELS - 1).join('.')))].map((p) => p.split('.').map(Number))];
  const next = await json(`${router.url}/v1/sids/next`, 'POST', { prefixes });
  assert.equal(next.status, 200, JSON.stringify(next.body));
  assert.deepEqual(next.body, (await json(`${single.url}/v1/sids/next`, 'POST', { prefixes })).body);
  assert.equal(next.body.next.slice(1).reduce((n: number, e: { counts: number[] }) => n + e.counts.reduce((a, b) => a + b, 0), 0), N);

  // The ETag holds while nothing is written, whichever replica of shard 0 answers, and If-None-Match gets a 304.
  const etag = fromRouter.etag!;
  for (let i = 0; i < 6; i++) assert.equal((await trieOf(router)).etag, etag, `ask ${i}`);
  const notModified = await trieOf(router, { 'if-none-match': etag });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.body.length, 0);
  assert.equal(notModified.etag, etag);
  // since= is not merged on a router: a full snapshot (kind 0), which every client must handle.
  const since = await trieOf(router, {}, `?since=${etag.slice(1, -1)}`);
  assert.equal(since.status, 200);
  assert.equal(decodeTrie(since.body).kind, 'full');
  assert.deepEqual(sidsOf(since.body), sidsOf(fromRouter.body));

  // An upsert through the router of an item whose SID nobody holds yet: a new ETag, and the SID in the trie.
  const occupied = new Set(sidsOf(fromRouter.body));
  const candidates = randomMatrix(200, DIM, 77);
  const encoded = await json(`${router.url}/v1/encode`, 'POST', { embeddings: Array.from({ length: 200 }, (_, i) => b64(candidates.subarray(i * DIM, (i + 1) * DIM))) });
  assert.equal(encoded.status, 200, JSON.stringify(encoded.body));
  const fresh = encoded.body.sids.findIndex((s: number[]) => !occupied.has(s.join('.')));
  assert.ok(fresh >= 0, 'some vector encodes to an unoccupied SID');
  const item = { items: [{ id: 'fresh', embedding: b64(candidates.subarray(fresh * DIM, (fresh + 1) * DIM)) }] };
  const upserted = await json(`${router.url}/v1/items`, 'POST', item);
  assert.equal(upserted.status, 200, JSON.stringify(upserted.body));
  assert.equal((await json(`${single.url}/v1/items`, 'POST', item)).status, 200);
  const after = await trieOf(router, { 'if-none-match': etag });
  assert.equal(after.status, 200, 'the old ETag no longer matches');
  assert.notEqual(after.etag, etag);
  assert.ok(sidsOf(after.body).includes(upserted.body.items[0].sid.join('.')), 'the new SID is in the trie');
  assert.deepEqual(sidsOf(after.body), sidsOf((await trieOf(single)).body), 'still the single node\'s SIDs');

  // Shard 1 with no live replica: a 503 naming it (a trie without its SIDs would mislead a generator), not a hang.
  r1a.child.kill('SIGKILL');
  await exited(r1a.child);
  for (const query of ['', '?format=json']) {
    const dead = await json(`${router.url}/v1/sids/trie${query}`);
    assert.equal(dead.status, 503, JSON.stringify(dead.body));
    assert.equal(dead.body.code, 'SIDX_ERR_CLUSTER');
    assert.match(dead.body.message, /shard\(s\) 1 did not answer/);
  }
  const cached = await fetch(`${router.url}/v1/sids/trie`, { headers: { 'if-none-match': after.etag! } });
  assert.equal(cached.status, 503, 'no 304 either: shard 1\'s part of the tag is unknown');
});
