import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix, rng } from '../helpers/random.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { exited, startServer, waitReady } from '../helpers/server-process.ts';

const DIM = 8;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const dataDir = join(tmp.dir, 'data');
after(() => tmp.cleanup());

async function upsert(url: string, ids: string[], seed: number): Promise<number> {
  const vectors = randomMatrix(ids.length, DIM, seed);
  const items = ids.map((id, i) => ({ id, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  const res = await fetch(`${url}/v1/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
  return res.status;
}

test('sidx serve answers on a real port, and SIGTERM closes it cleanly', async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 8 });
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
});

test('acknowledged upserts survive kill -9 at random moments; FAISS count equals LMDB count after restart', async () => {
  const rand = rng(42);
  const acknowledged = new Set<string>();
  for (let round = 0; round < 4; round++) {
    const server = await startServer(['--data-dir', dataDir, '--model', modelDir]);
    const ready = await waitReady(server.url);
    assert.equal(ready.items, ready.vectors, `round ${round}: FAISS and LMDB agree after restart`);
    assert.ok((ready.items as number) >= acknowledged.size);
    for (const id of acknowledged) {
      const res = await fetch(`${server.url}/v1/items/${id}`);
      assert.equal(res.status, 200, `acknowledged item ${id} lost after kill -9 (round ${round})`);
    }
    const inflight: Promise<void>[] = [];
    const batches = 3 + Math.floor(rand() * 5);
    for (let b = 0; b < batches; b++) {
      const ids = Array.from({ length: 20 }, (_, i) => `r${round}-b${b}-${i}`);
      inflight.push(
        upsert(server.url, ids, round * 100 + b).then(
          (status) => {
            if (status === 200) ids.forEach((id) => acknowledged.add(id));
          },
          () => {},
        ),
      );
    }
    await new Promise((r) => setTimeout(r, Math.floor(rand() * 60)));
    server.child.kill('SIGKILL');
    await exited(server.child);
    await Promise.all(inflight);
  }
  const server = await startServer(['--data-dir', dataDir, '--model', modelDir]);
  const ready = await waitReady(server.url);
  assert.equal(ready.items, ready.vectors);
  for (const id of acknowledged) assert.equal((await fetch(`${server.url}/v1/items/${id}`)).status, 200, id);
  assert.ok(acknowledged.size > 0, 'some batches were acknowledged before the kills');
  server.child.kill('SIGTERM');
  await exited(server.child);
});
