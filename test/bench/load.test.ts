// runLoad: autocannon in a worker thread of its own against a real HTTP server on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { threadId } from 'node:worker_threads';
import { runLoad } from '../../src/bench/load.ts';

test('runLoad posts the bodies round-robin from its own thread, times the 2xx answers and counts the others', async () => {
  const seen = new Map<string, number>();
  let answered = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { body += chunk; });
    req.on('end', () => {
      seen.set(body, (seen.get(body) ?? 0) + 1);
      answered++;
      res.statusCode = body === 'refuse' ? 503 : 200;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const load = await runLoad({ url: `http://127.0.0.1:${port}`, path: '/x', bodies: ['a', 'b', 'refuse'], connections: 2, durationS: 1 });
    assert.equal(threadId, 0, 'the caller stays on the main thread');
    assert.ok(load.requests > 10, `requests: ${load.requests}`);
    assert.deepEqual([...seen.keys()].sort(), ['a', 'b', 'refuse'], 'every body was sent');
    const refused = seen.get('refuse')!;
    assert.ok(Math.abs(seen.get('a')! - refused) <= 2 && Math.abs(seen.get('b')! - refused) <= 2, 'round-robin');
    // The server may answer the last request of each connection after autocannon stopped counting.
    assert.ok(load.non2xx <= refused && load.non2xx >= refused - 2, `non-2xx ${load.non2xx} of ${refused} refused`);
    const ok = answered - refused;
    assert.ok(load.latencyMs.n <= ok && load.latencyMs.n >= ok - 2, `one latency per 2xx answer: ${load.latencyMs.n} of ${ok}`);
    assert.ok(load.latencyMs.p50 > 0 && load.latencyMs.p50 <= load.latencyMs.p99 && load.latencyMs.p99 <= load.latencyMs.max);
    assert.ok(load.qps > 0 && Math.abs(load.qps - load.latencyMs.n / 1) < load.latencyMs.n * 0.5, `qps ${load.qps}`);
    assert.equal(load.errors, 0);
    assert.ok(load.loadGeneratorCpuMs > 0, `the load generator's CPU: ${load.loadGeneratorCpuMs} ms`);
  } finally {
    server.close();
  }
  await assert.rejects(runLoad({ url: 'http://127.0.0.1:1', path: '/', bodies: [], connections: 1, durationS: 1 }), /at least one body/);
});
