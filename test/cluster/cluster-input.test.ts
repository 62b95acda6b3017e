/**
 * A cluster router refuses the writes a single node refuses, before it logs anything: a shard skips a write-log
 * message its catalog refuses (marked applied, with a warning), so an id the router let through would be
 * acknowledged and then lost with every valid item of its shard's message. Real processes: a local
 * `nats-server -js`, two shards and a router as `sidx serve` children, and a single node beside them.
 * Skipped where nats-server is not installed (scripts/setup.sh installs it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { natsServerMissing } from '../../src/bench/nats-server.ts';
import { b64, clusterDir, json } from '../helpers/cluster.ts';
import { randomMatrix } from '../helpers/random.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import { writeTestBundle } from '../helpers/service.ts';

const DIM = 8;

test('a router refuses the ids a catalog refuses (UTF-8 bytes over 512, unpaired surrogates) with the single node\'s 400, and logs nothing', { skip: natsServerMissing(), timeout: 120_000 }, async (t) => {
  const { dir, start } = clusterDir(t, 'sidx-cluster-input-');
  await writeTestBundle(join(dir, 'm'), { dim: DIM, levels: 2, codebookSize: 8, seed: 4 });
  const cluster = await start(join(dir, 'm'), { SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '5000' });
  await Promise.all([cluster.replica(0, 2, 'a'), cluster.replica(1, 2, 'a')]);
  const router = await cluster.serve(['--role', 'router', '--shard', '0/2'], { SIDX__CLUSTER__WAIT_APPLIED: 'true' });
  const single = await cluster.serve(['--data-dir', join(dir, 'single')]);

  const vectors = randomMatrix(20, DIM, 8);
  const item = (id: string, i: number) => ({ id, embedding: b64(vectors.subarray(i * DIM, (i + 1) * DIM)) });
  const valid = Array.from({ length: 8 }, (_, i) => item(`ok${i}`, i));
  const tooLong = '€'.repeat(300); // 300 characters (the schema's limit is 512) but 900 UTF-8 bytes
  const surrogate = 'a\ud800b';
  const held = async (s: ServerProcess, ids: string[]) => {
    const found = [];
    for (const id of ids) if ((await json(`${s.url}/v1/items/${encodeURIComponent(id)}`)).status === 200) found.push(id);
    return found;
  };
  const same = async (method: string, path: string, body?: unknown) => {
    const [r, s] = [await json(`${router.url}${path}`, method, body), await json(`${single.url}${path}`, method, body)];
    assert.equal(s.status, 400, `single node: ${JSON.stringify(s.body)}`);
    assert.deepEqual({ status: r.status, code: r.body.code, field: r.body.field }, { status: s.status, code: s.body.code, field: s.body.field }, `${method} ${path}`);
    return r.body;
  };

  for (const bad of [tooLong, surrogate]) {
    const refused = await same('POST', '/v1/items', { items: [...valid.slice(0, 3), item(bad, 9), ...valid.slice(3)] });
    assert.equal(refused.field, 'items[3].id');
  }
  // Nothing of those requests was logged: a valid write after them, applied on both shards, finds none of their items.
  assert.equal((await json(`${router.url}/v1/items`, 'POST', { items: [item('after', 10), item('after2', 11)] })).status, 200);
  assert.deepEqual(await held(router, valid.map((v) => v.id)), []);

  // A delete with a bad id deletes nothing; a lookup of one is a 400.
  assert.equal((await json(`${router.url}/v1/items`, 'POST', { items: valid })).status, 200);
  for (const s of [single]) assert.equal((await json(`${s.url}/v1/items`, 'POST', { items: valid })).status, 200);
  assert.equal((await same('POST', '/v1/items/delete', { ids: [...valid.map((v) => v.id), tooLong] })).field, 'ids[8]');
  assert.equal((await json(`${router.url}/v1/items/delete`, 'POST', { ids: ['after'] })).status, 200); // applied after it
  assert.deepEqual(await held(router, valid.map((v) => v.id)), valid.map((v) => v.id), 'no id of the refused delete was deleted');
  await same('GET', `/v1/items/${encodeURIComponent(tooLong)}`);
});
