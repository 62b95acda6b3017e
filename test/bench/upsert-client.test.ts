// The bench's upsert client: the bodies it writes by hand against JSON.stringify, and upsertAll against a real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { upsertAll, upsertBody } from '../../src/bench/http.ts';

const DIM = 5;
const rows = (n: number) => Float32Array.from({ length: n * DIM }, (_, i) => Math.sin(i) * 1e3 ** ((i % 7) - 3));
const stringified = (items: Float32Array, start: number, end: number) => JSON.stringify({
  items: Array.from({ length: end - start }, (_, j) => ({
    id: `item-${start + j}`,
    embedding: Buffer.from(items.buffer, (start + j) * 4 * DIM, 4 * DIM).toString('base64'),
  })),
});

test('upsertBody writes the bytes JSON.stringify gives for the same items, for any slice', () => {
  const items = rows(40);
  for (const [start, end] of [[0, 1], [0, 40], [7, 19], [39, 40]] as const) {
    assert.equal(upsertBody(items, DIM, start, end).toString('latin1'), stringified(items, start, end), `rows ${start}..${end}`);
  }
  // A view into a larger buffer reads its own rows.
  const offset = rows(43).subarray(3 * DIM);
  assert.equal(upsertBody(offset, DIM, 2, 5).toString('latin1'), stringified(new Float32Array(offset), 2, 5));
});

test('upsertAll sends every row once in batches, reports the rate, and names the rows of a refused batch', async () => {
  const bodies: string[] = [];
  let refuseFrom = Infinity;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { body += chunk; });
    req.on('end', () => {
      const first = Number(/"item-(\d+)"/.exec(body)![1]);
      if (req.url !== '/v1/items' || req.headers['content-type'] !== 'application/json' || first >= refuseFrom) {
        res.statusCode = 400;
        res.end('{"error":"refused"}');
        return;
      }
      bodies.push(body);
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const items = rows(23);
    const progress: number[] = [];
    const result = await upsertAll(url, items, 23, DIM, 5, 2, (done) => progress.push(done));
    assert.equal(result.items, 23);
    assert.ok(result.itemsPerSecond > 0 && result.batchLatencyMs.n === 5, `${result.itemsPerSecond} items/s, ${result.batchLatencyMs.n} batches`);
    // Done counts after each answer: the last batch (3 rows) may be answered before the one sent beside it.
    assert.equal(progress.length, 5);
    assert.equal(progress.at(-1), 23);
    assert.ok(progress.every((d, i) => i === 0 || d - progress[i - 1]! === 5 || d - progress[i - 1]! === 3), `${progress}`);
    const sent = bodies.flatMap((b) => (JSON.parse(b) as { items: { id: string; embedding: string }[] }).items);
    assert.deepEqual(sent.map((it) => it.id).sort(), Array.from({ length: 23 }, (_, i) => `item-${i}`).sort());
    for (const it of sent) {
      const row = Number(it.id.slice(5));
      assert.deepEqual(new Float32Array(Uint8Array.from(Buffer.from(it.embedding, 'base64')).buffer), items.subarray(row * DIM, (row + 1) * DIM));
    }

    refuseFrom = 10;
    await assert.rejects(upsertAll(url, items, 23, DIM, 5, 1, () => {}), /upsert of rows 10\.\.15 answered 400: \{"error":"refused"\}/);
  } finally {
    server.close();
  }
});

test('upsertAll posts to <url>/v1/items as fetch did: a path prefix kept, an IPv6 host taken without its brackets', async (t) => {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url!);
    req.resume();
    req.on('end', () => res.end('{}'));
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => resolve(true));
  });
  if (!listening) {
    t.skip('no IPv6 loopback here');
    return;
  }
  try {
    const url = `http://[::1]:${(server.address() as AddressInfo).port}/prefix`;
    await upsertAll(url, rows(3), 3, DIM, 2, 1, () => {});
    assert.deepEqual(paths, ['/prefix/v1/items', '/prefix/v1/items']);
  } finally {
    server.close();
  }
});
