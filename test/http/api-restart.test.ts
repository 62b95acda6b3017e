import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle } from '../helpers/service.ts';

const DIM = 12;
const N = 600;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const dataDir = join(tmp.dir, 'data');
const vectors = randomMatrix(N, DIM, 11);
const queries = randomMatrix(5, DIM, 12);

after(() => tmp.cleanup());

async function snapshot(svc: Awaited<ReturnType<typeof startService>>) {
  const results = [];
  for (let q = 0; q < 5; q++) {
    const res = await svc.app.inject({
      method: 'POST',
      url: '/v1/retrieve',
      payload: { embedding: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)), k: 20, expand: 'hamming1' },
    });
    assert.equal(res.statusCode, 200);
    results.push(res.json().items);
  }
  const ready = (await svc.app.inject({ method: 'GET', url: '/readyz' })).json();
  return { results, items: ready.items, vectors: ready.vectors };
}

test('restart keeps everything; a lost FAISS checkpoint is rebuilt from LMDB; a stale one is caught up', async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 6, seed: 4 });
  let svc = await startService(dataDir, modelDir);
  const items = Array.from({ length: N }, (_, i) => ({ id: `i${i}`, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  for (let s = 0; s < N; s += 200) {
    const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: items.slice(s, s + 200) } });
    assert.equal(res.statusCode, 200);
  }
  await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ['i0', 'i1'] } });
  const before = await snapshot(svc);
  assert.equal(before.items, N - 2);
  await svc.close();
  assert.ok(existsSync(join(dataDir, 'vectors.faiss')), 'close writes a FAISS checkpoint');

  svc = await startService(dataDir, modelDir);
  assert.deepEqual(await snapshot(svc), before, 'reopened from the checkpoint');
  // Writes after the checkpoint live only in the change log until the next one: simulate a crash by
  // keeping the old checkpoint files while the catalog moves on.
  const { cpSync } = await import('node:fs');
  cpSync(join(dataDir, 'vectors.faiss'), join(tmp.dir, 'old.faiss'));
  cpSync(join(dataDir, 'vectors.json'), join(tmp.dir, 'old.json'));
  await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ['i2'] } });
  await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'i3', embedding: items[4]!.embedding }, { id: 'new', embedding: items[5]!.embedding }] } });
  const moved = await snapshot(svc);
  await svc.close();
  cpSync(join(tmp.dir, 'old.faiss'), join(dataDir, 'vectors.faiss'));
  cpSync(join(tmp.dir, 'old.json'), join(dataDir, 'vectors.json'));

  svc = await startService(dataDir, modelDir);
  assert.deepEqual(await snapshot(svc), moved, 'stale checkpoint caught up from the change log');
  await svc.close();

  rmSync(join(dataDir, 'vectors.faiss'));
  rmSync(join(dataDir, 'vectors.json'));
  svc = await startService(dataDir, modelDir);
  assert.deepEqual(await snapshot(svc), moved, 'rebuilt from LMDB after the FAISS files were deleted');
  await svc.close();
});
