import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
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

test('restart keeps everything; lost vector files are rebuilt from LMDB; stale ones are caught up or rebuilt', async () => {
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
  assert.ok(existsSync(join(dataDir, 'vectors.ids')), 'the vector id file exists');
  assert.ok(!existsSync(join(dataDir, 'vectors.slots')), 'no second copy of the vectors');
  assert.equal(JSON.parse(readFileSync(join(dataDir, 'vectors.json'), 'utf8')).ntotal, N - 2, 'close syncs it');

  svc = await startService(dataDir, modelDir);
  assert.deepEqual(await snapshot(svc), before, 'reopened from the id file');
  // Old vector files while the catalog moved on (the change log was cut at the last sync: a rebuild).
  const { cpSync } = await import('node:fs');
  cpSync(join(dataDir, 'vectors.ids'), join(tmp.dir, 'old.ids'));
  cpSync(join(dataDir, 'vectors.json'), join(tmp.dir, 'old.json'));
  await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ['i2'] } });
  await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: [{ id: 'i3', embedding: items[4]!.embedding }, { id: 'new', embedding: items[5]!.embedding }] } });
  const moved = await snapshot(svc);
  await svc.close();
  cpSync(join(tmp.dir, 'old.ids'), join(dataDir, 'vectors.ids'));
  cpSync(join(tmp.dir, 'old.json'), join(dataDir, 'vectors.json'));

  svc = await startService(dataDir, modelDir);
  assert.deepEqual(await snapshot(svc), moved, 'stale vector files replaced');
  await svc.close();

  rmSync(join(dataDir, 'vectors.ids'));
  rmSync(join(dataDir, 'vectors.json'));
  svc = await startService(dataDir, modelDir);
  assert.deepEqual(await snapshot(svc), moved, 'rebuilt from LMDB after the vector files were deleted');
  await svc.close();
});
