/** Per-request log lines: off by default (server.logRequests), on when asked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { buildApp } from '../../src/http/app.ts';
import { loadConfig } from '../../src/config.ts';

async function linesLogged(logRequests: boolean): Promise<string[]> {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
  const config = loadConfig({ server: { logRequests } }, {});
  const app = await buildApp({ service: null, config, logger: { level: 'info', stream } as never });
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  await app.close();
  return lines.filter((l) => /incoming request|request completed/.test(l));
}

test('no per-request lines by default; both lines with server.logRequests', async () => {
  assert.deepEqual(await linesLogged(false), []);
  const on = await linesLogged(true);
  assert.equal(on.length, 2);
  assert.match(on[0]!, /incoming request/);
  assert.match(on[1]!, /request completed/);
});
