import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
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

// kill -9 durability: test/reliability/crash.test.ts (20 kills in CI, 100 with SIDX_LONG=1).
