/**
 * A cluster router's answers without a rerank come in the order one node gathers them (src/cluster/merge-order.ts):
 * generated SIDs in the query's order (FORGE's HR@K reads the answer in beam order), their Hamming-1 neighbours,
 * the beam's SIDs and prefixes. Real processes: a local `nats-server -js`, two shards and a router as `sidx serve`
 * children, and a single node beside them on the same items, compared query by query, through /v1/retrieve and
 * /v1/retrieve/batch. Skipped where nats-server is not installed (scripts/setup.sh installs it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { natsServerMissing } from '../../src/bench/nats-server.ts';
import { b64, clusterDir, json } from '../helpers/cluster.ts';
import { randomMatrix } from '../helpers/random.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import { writeBeamBundle } from '../helpers/service.ts';

const DIM = 16;
const LEVELS = 3;
const CODES = 8;
const N = 500;

interface Item { id: string; sid: number[]; match: string; score: number | null }

/** Each item's cell: how it matched and its SID (which of one cell's items a shard holds is not the order's business). */
const cellsOf = (items: Item[]) => items.map((it) => `${it.match}:${it.sid.join('.')}`);

test('without a rerank a router answers in the order one node gathers: SIDs as given, Hamming-1 neighbours, the beam\'s SIDs and prefixes', { skip: natsServerMissing(), timeout: 180_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-order-');
  const codebooks = Array.from({ length: LEVELS }, (_, l) => randomMatrix(CODES, DIM, 40 + l, 0.5 ** l));
  await writeBeamBundle(join(dir, 'm'), 'order-beam', DIM, codebooks, CODES);
  const cluster = await start(join(dir, 'm'), { SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '5000', SIDX__LIMITS__MAX_BATCH: '1000' });
  await Promise.all([cluster.replica(0, 2, 'a'), cluster.replica(1, 2, 'a')]);
  const router = await cluster.serve(['--role', 'router', '--shard', '0/2'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });
  const single = await cluster.serve(['--data-dir', join(dir, 'single')]);

  const vectors = randomMatrix(N, DIM, 7);
  const embedding = (i: number) => b64(vectors.subarray(i * DIM, (i + 1) * DIM));
  const items = Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: embedding(i) }));
  const sids: number[][] = [];
  for (const s of [single, router]) {
    const res = await json(`${s.url}/v1/items`, 'POST', { items });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (s === single) sids.push(...res.body.items.map((it: Item) => it.sid));
  }
  const occupied = [...new Set(sids.map((s) => s.join('.')))].map((s) => s.split('.').map(Number));
  const beam = occupied.filter((_, i) => i % 5 === 2).slice(0, 12).reverse(); // occupied SIDs, in no sorted order

  const bodies = [
    { sids: beam, k: 200, expand: 'none' },
    { sids: beam.slice(0, 3), k: 120, expand: 'hamming1' },
    { sids: [beam[0]], k: 8, expand: 'auto' },
    { embedding: embedding(5), k: 60, rerank: false }, // the beam: own SID, the beam's SIDs, then its prefixes
    { embedding: embedding(9), k: 30, expand: 'auto', rerank: false }, // neighbours by the encoder's distances
  ];
  const ask = async (s: ServerProcess, body: unknown): Promise<Item[]> => {
    const res = await json(`${s.url}/v1/retrieve`, 'POST', body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  };
  const expected: string[][] = [];
  for (const body of bodies) {
    const [fromRouter, fromSingle] = [await ask(router, body), await ask(single, body)];
    const what = JSON.stringify({ ...body, embedding: body.embedding ? '...' : undefined });
    assert.ok(fromSingle.length > 0 && fromSingle.every((it) => it.score === null), `${what}: unscored items`);
    assert.deepEqual(cellsOf(fromRouter), cellsOf(fromSingle), what);
    expected.push(cellsOf(fromSingle));
  }
  const matches = new Set(expected.flat().map((c) => c.split(':')[0]));
  assert.deepEqual([...matches].sort(), ['beam', 'exact', 'hamming1', 'prefix'], 'every kind of match was ordered');
  // Every item of the given SIDs, whichever shard holds it.
  const ids = (list: Item[]) => list.map((it) => it.id).sort();
  assert.deepEqual(ids(await ask(router, bodies[0])), ids(await ask(single, bodies[0])));
  assert.ok(new Set(expected[0]!.map((c) => c.split(':')[1])).size === beam.length, 'every given SID answered');

  // The same queries in one batch through the router.
  const batch = await json(`${router.url}/v1/retrieve/batch`, 'POST', { queries: bodies });
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  assert.deepEqual(batch.body.results.map((r: { items: Item[] }) => cellsOf(r.items)), expected);
});
