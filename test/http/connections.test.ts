/**
 * Connection limits (issue 14), over a real loopback port with raw sockets: a request whose body stops arriving is
 * answered 408 and closed after server.requestTimeoutMs; an idle keep-alive connection is closed after
 * server.keepAliveTimeoutMs; on close, a request still receiving its body is cut so the close does not wait for it,
 * new connections are refused, and a request in flight finishes and closes its connection.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { kPoolTestHooks } from '../../src/tokenizer/encoder-pool.ts';
import { tempDir } from '../helpers/paths.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const PARTIAL = 'POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"items":[';

async function serve(name: string, server: { requestTimeoutMs: number; keepAliveTimeoutMs: number }) {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: 8, levels: 2, codebookSize: 4, seed: 5 });
  const svc = await startService(join(tmp.dir, name), modelDir, {}, { server });
  await svc.app.listen({ port: 0, host: '127.0.0.1' });
  return { svc, port: (svc.app.server.address() as { port: number }).port };
}

/** Connects, writes `text`, and collects what the server sends until it closes the connection. */
async function exchange(port: number, text: string): Promise<{ socket: Socket; closed: Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (d) => (received += d.toString()));
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => received);
  socket.write(text);
  return { socket, closed };
}

async function items(svc: RunningService): Promise<number> {
  return (await svc.app.inject({ method: 'GET', url: '/readyz' })).json().items;
}

test('a body that stops arriving gets 408 and the connection closes; an idle keep-alive connection closes', async () => {
  const { svc, port } = await serve('timeouts', { requestTimeoutMs: 300, keepAliveTimeoutMs: 300 });
  try {
    const stuck = await exchange(port, PARTIAL);
    assert.match(await stuck.closed, /^HTTP\/1\.1 408 /, 'the server timed the request out');
    assert.equal(await items(svc), 0, 'nothing written');
    const idle = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n');
    const answered = await idle.closed;
    assert.match(answered, /^HTTP\/1\.1 200 /);
    assert.match(answered, /keep-alive/i, 'the answer kept the connection open, until the server closed it idle');
  } finally {
    await svc.close();
  }
});

test('close cuts a request whose body is still arriving, and finishes without waiting for it', async () => {
  const { svc, port } = await serve('close', { requestTimeoutMs: 3_600_000, keepAliveTimeoutMs: 3_600_000 });
  const received = once(svc.app.server, 'request');
  const stuck = await exchange(port, PARTIAL);
  await received;
  await svc.app.close(); // before the fix: waits for the stuck request (here, for an hour)
  assert.equal(await stuck.closed, '', 'cut without an answer: nothing was done for it');
  await assert.rejects(exchange(port, 'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n'), /ECONNREFUSED/, 'new connections are refused');
  await svc.service.close();
});

test('on close, a request in flight finishes with connection: close, and a request pipelined behind it gets no answer', async () => {
  const { svc, port } = await serve('in-flight', { requestTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000 });
  const release = svc.service[kServiceTestHooks].pool()[kPoolTestHooks].hold(); // the encode waits in the queue
  const body = JSON.stringify({ embeddings: [[1, 2, 3, 4, 5, 6, 7, 8]] });
  const received = once(svc.app.server, 'request');
  const conn = await exchange(port, `POST /v1/encode HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  await received;
  while (svc.service.encoderQueueLength === 0) await new Promise((r) => setImmediate(r));
  const closing = svc.app.close();
  const second = once(svc.app.server, 'request');
  conn.socket.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
  await second;
  release();
  await closing;
  const answered = await conn.closed;
  assert.match(answered, /^HTTP\/1\.1 200 [\s\S]*connection: close[\s\S]*"sids"/i, 'the request in flight finished');
  assert.equal(answered.match(/HTTP\/1\.1 /g)!.length, 1, 'the connection closed after that answer');
  await svc.service.close();
});
