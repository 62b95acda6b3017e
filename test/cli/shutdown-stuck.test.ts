/**
 * SIGTERM with a stuck client (issue 14): a connection that sent part of a declared body does not hold the drain.
 * `sidx serve` cuts it, checkpoints FAISS, closes the stores, removes its lock and exits 0 well before
 * server.shutdownTimeoutMs (which would exit 1); the request timeout is an hour here, so only the shutdown acts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { exited, startServer, waitReady } from '../helpers/server-process.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const N = 50;
const tmp = tempDir();
after(() => tmp.cleanup());

test('SIGTERM with a connection stuck mid-body: the socket is closed, FAISS checkpointed, exit 0', async () => {
  const modelDir = join(tmp.dir, 'model');
  const dataDir = join(tmp.dir, 'data');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 4 });
  const server = await startServer(['--data-dir', dataDir, '--model', modelDir], {
    SIDX__SERVER__REQUEST_TIMEOUT_MS: '3600000', SIDX__SERVER__SHUTDOWN_TIMEOUT_MS: '20000', SIDX__SERVER__LOG_REQUESTS: 'true',
  });
  await waitReady(server.url);
  const vectors = randomMatrix(N, DIM, 2);
  const items = Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  const res = await fetch(`${server.url}/v1/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
  assert.equal(res.status, 200);

  const port = Number(new URL(server.url).port);
  const stuck = connect(port, '127.0.0.1');
  await once(stuck, 'connect');
  stuck.on('error', () => {});
  const closed = once(stuck, 'close');
  stuck.write('POST /v1/items?stuck=1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"items":[');
  while (!server.output().includes('/v1/items?stuck=1')) await sleep(20); // the server logged the incoming request

  server.child.kill('SIGTERM');
  const code = await exited(server.child);
  assert.equal(code, 0, server.output());
  await closed;
  assert.doesNotMatch(server.output(), /not drained/);
  assert.match(server.output(), /stopped/);
  const checkpoint = JSON.parse(readFileSync(join(dataDir, 'vectors.json'), 'utf8')) as { ntotal: number };
  assert.equal(checkpoint.ntotal, N, 'the shutdown checkpoint holds every item');
  assert.equal(existsSync(join(dataDir, 'sidx.lock')), false, 'the stores closed and the lock was released');
});
