import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { exited, runServe, startServer, waitReady } from '../helpers/server-process.ts';

const DIM = 8;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const dataDir = join(tmp.dir, 'data');
before(() => writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 8 }));
after(() => tmp.cleanup());

async function upsert(url: string, ids: string[], seed: number): Promise<number> {
  const vectors = randomMatrix(ids.length, DIM, seed);
  const items = ids.map((id, i) => ({ id, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  const res = await fetch(`${url}/v1/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
  return res.status;
}

test('sidx serve answers on a real port, and SIGTERM closes it cleanly', async () => {
  const server = await startServer(['--data-dir', dataDir, '--model', modelDir]);
  const ready = await waitReady(server.url);
  assert.equal(ready.status, 'ready');
  assert.equal(ready.provider, 'cpu');
  assert.equal(await upsert(server.url, ['a', 'b'], 1), 200);
  const res = await fetch(`${server.url}/v1/items/a`);
  assert.equal(res.status, 200);
  const docs = await fetch(`${server.url}/openapi.json`);
  assert.equal((await docs.json()).info.title, 'sidx');
  server.child.kill('SIGTERM');
  assert.equal(await exited(server.child), 0, server.output());
  assert.doesNotMatch(server.output(), /Warning|FSTDEP/, 'no deprecation or other process warning at start or stop');
});

test('every line logged before a kill -9 is in the output (log lines are written synchronously)', async () => {
  const server = await startServer(['--data-dir', join(tmp.dir, 'data-kill'), '--model', modelDir], { SIDX__SERVER__LOG_LEVEL: 'info', SIDX__SERVER__LOG_REQUESTS: 'true' });
  await waitReady(server.url);
  const closed = new Promise((resolve) => server.child.once('close', resolve));
  // Stop reading the server's stdout: the pipe fills (64 KiB), and a log line that cannot be written must hold its
  // request back rather than wait in memory, where a kill -9 would lose it.
  server.child.stdout!.pause();
  const answered: string[] = [];
  const requests = Array.from({ length: 600 }, async (_, i) => {
    const res = await fetch(`${server.url}/v1/items/probe-${i}`).catch(() => null);
    if (res?.status === 404) answered.push(`probe-${i}`);
  });
  // Kill once all are answered, or once no answer came for a second (the server is blocked on its full stdout).
  for (let seen = -1; answered.length !== seen && answered.length < requests.length;) {
    seen = answered.length;
    await new Promise((r) => setTimeout(r, 1000));
  }
  server.child.kill('SIGKILL');
  server.child.stdout!.resume();
  await Promise.all(requests);
  await closed;
  const logged = new Set([...server.output().matchAll(/"url":"\/v1\/items\/(probe-\d+)"[^\n]*"msg":"incoming request"/g)].map((m) => m[1]));
  const lost = answered.filter((id) => !logged.has(id));
  assert.ok(answered.length > 0);
  assert.deepEqual(lost, [], `${lost.length} of ${answered.length} answered requests have no "incoming request" line`);
});

// kill -9 durability: test/reliability/crash.test.ts (20 kills in CI, 100 with SIDX_LONG=1).

test('without --model, sidx serve loads the checkout\'s models/default from any working directory', async () => {
  const elsewhere = join(tmp.dir, 'elsewhere');
  mkdirSync(elsewhere);
  const server = await startServer(['--data-dir', 'data'], {}, elsewhere);
  try {
    const ready = await waitReady(server.url, 60_000, server);
    assert.equal(ready.model, 'default-rqvae-3x256');
    assert.ok(existsSync(join(elsewhere, 'data', 'sidx.lock')), 'a relative --data-dir is relative to the working directory');
  } finally {
    server.child.kill('SIGTERM');
  }
  assert.equal(await exited(server.child), 0, server.output());
});

test('a port in use stops the start with one line naming host:port and --port, exit 1, nothing opened', async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address() as AddressInfo;
  const busyDir = join(tmp.dir, 'data-busy');
  try {
    const run = await runServe(['--port', String(port), '--host', '127.0.0.1', '--data-dir', busyDir, '--model', modelDir]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.equal(run.stderr, `sidx serve: cannot listen on 127.0.0.1:${port}: the address is in use by another process; `
      + 'give another --port (or SIDX__SERVER__PORT) [SIDX_ERR_CONFIG]\n');
    assert.doesNotMatch(run.stdout, /EADDRINUSE|"stack"/);
  } finally {
    holder.close();
  }
  assert.equal(existsSync(busyDir), false, 'no store was opened, no lock taken');
});

test('a start that fails once listening is one sidx serve: line on stderr, exit 1, no stack', async () => {
  const run = await runServe(['--port', '0', '--host', '127.0.0.1', '--data-dir', join(tmp.dir, 'data-nomodel'), '--model', join(tmp.dir, 'nonexistent')]);
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.equal(run.stderr, `sidx serve: ${join(tmp.dir, 'nonexistent', 'model.json')}: not found [SIDX_ERR_MODEL_BUNDLE]\n`);
  assert.doesNotMatch(run.stdout, /"stack"|start failed/);
});
