/**
 * Config `vectors.storage` sq8 through HTTP: /v1/retrieve answers like the f32 storage at the top (same items, same
 * exact scores), across a restart that loads the codes file, and after a torn codes file (rebuilt from LMDB);
 * SIDX__VECTORS__* variables are read and a bad value is refused naming the field; sidx_vector_clamped_items counts
 * the items beyond the ranges.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { SidxError } from '../../src/errors.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { fillItems, topAnswers } from '../helpers/retrieve-answers.ts';
import { clampedItemsGauge, putRows, startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 24;
const N = 800;
const K = 10;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const vectors = randomMatrix(N, DIM, 21);
const queries = randomMatrix(8, DIM, 22);
const sq8 = { vectors: { storage: 'sq8' as const, trainSize: 300, rescore: 30 } };
const f32 = { vectors: { storage: 'f32' as const } };

after(() => tmp.cleanup());

const fill = (svc: RunningService) => fillItems(svc, vectors, DIM);
const answers = (svc: RunningService) => topAnswers(svc, queries, DIM, K, 3 * K);

test('sq8 answers like f32 at the top, after a restart from the codes file and after a torn codes file', async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 8, seed: 3 });
  const flat = await startService(join(tmp.dir, 'f32'), modelDir, {}, f32);
  await fill(flat);
  const want = await answers(flat);
  await flat.close();

  const dataDir = join(tmp.dir, 'sq8');
  let svc = await startService(dataDir, modelDir, {}, sq8);
  await fill(svc);
  assert.deepEqual(await answers(svc), want, 'same items and exact scores as f32');
  assert.equal((await svc.app.inject({ method: 'GET', url: '/readyz' })).json().vectors, N - 2);
  await svc.close();
  const codes = join(dataDir, 'vectors.sq8');
  assert.equal(statSync(codes).size, 4096 + N * DIM, 'one byte per dimension per slot after a 4 KiB header');

  svc = await startService(dataDir, modelDir, {}, sq8);
  assert.deepEqual(await answers(svc), want, 'reopened from the codes file');
  await svc.close();

  truncateSync(codes, statSync(codes).size - 5);
  svc = await startService(dataDir, modelDir, {}, sq8);
  assert.deepEqual(await answers(svc), want, 'rebuilt from LMDB after a torn codes file');
  assert.equal((await svc.app.inject({ method: 'GET', url: '/readyz' })).json().vectors, N - 2);
  await svc.close();
  // One code row per row of the catalog's vector file (the two deleted items' rows are free, still covered).
  const rows = statSync(join(dataDir, 'catalog', 'vectors.f32')).size / (4 * DIM);
  assert.equal(rows, N);
  assert.equal(statSync(codes).size, 4096 + rows * DIM, 'the rebuild rewrote the codes file');

  // Switching storages on one data directory: f32 drops the codes file it would not keep current; sq8 then trains
  // again on open.
  svc = await startService(dataDir, modelDir, {}, f32);
  const moved = [{ id: 'i7', embedding: Array.from(queries.subarray(0, DIM)) }];
  assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: moved } })).statusCode, 200);
  const after = await answers(svc);
  assert.equal(after[0]![0]!.id, 'i7', 'the moved item tops its own query');
  await svc.close();
  assert.equal(existsSync(codes), false, 'f32 removed the codes file');
  svc = await startService(dataDir, modelDir, {}, sq8);
  assert.deepEqual(await answers(svc), after, 'sq8 after f32 answers like it');
  await svc.close();
  assert.equal(statSync(join(dataDir, 'catalog', 'vectors.f32')).size, rows * 4 * DIM, 'the moved item took a freed row');
  assert.equal(statSync(codes).size, 4096 + rows * DIM, 'trained again at open');
});

test('SIDX__VECTORS__* variables set the storage; a bad value is refused naming the field', () => {
  const config = loadConfig({}, { SIDX__VECTORS__STORAGE: 'sq8', SIDX__VECTORS__RESCORE: '40', SIDX__VECTORS__TRAIN_SIZE: '5000' });
  assert.deepEqual({ ...config.vectors }, { storage: 'sq8', rerankOffThread: true, rescore: 40, trainSize: 5000, hugePages: true, layout: 'sid', pqM: 0 });
  assert.equal(loadConfig({}, { SIDX__VECTORS__HUGE_PAGES: 'false' }).vectors.hugePages, false);
  assert.equal(loadConfig({}, { SIDX__VECTORS__LAYOUT: 'arrival' }).vectors.layout, 'arrival');
  assert.equal(loadConfig({}, {}).vectors.storage, 'sq8', 'sq8 by default');
  assert.equal(loadConfig({}, { SIDX__VECTORS__STORAGE: 'f32' }).vectors.storage, 'f32');
  const refused = (field: string, text: string) => (e: unknown) =>
    e instanceof SidxError && e.code === 'SIDX_ERR_CONFIG' && e.field === field && e.message.includes(text);
  assert.throws(() => loadConfig({}, { SIDX__VECTORS__STORAGE: 'sq4' }),
    refused('vectors.storage', 'configuration vectors.storage (from SIDX__VECTORS__STORAGE="sq4"): must be one of "f32", "sq8", "pq"'));
  assert.throws(() => loadConfig({}, { SIDX__VECTORS__RESCORE: '-1' }), refused('vectors.rescore', 'configuration vectors.rescore'));
  assert.throws(() => loadConfig({}, { SIDX__VECTORS__LAYOUT: 'random' }), refused('vectors.layout', 'configuration vectors.layout'));
});

test('sidx_vector_clamped_items counts the items beyond the sq8 ranges: re-upserts and deletes release their old slots', async () => {
  const dataDir = join(tmp.dir, 'sq8-clamped');
  const svc = await startService(dataDir, modelDir, {}, { vectors: { storage: 'sq8', trainSize: 200, rescore: 30 } });
  const gauge = () => clampedItemsGauge(svc);
  const put = (ids: string[], rows: Float32Array) => putRows(svc, DIM, ids, rows);
  const ids = (prefix: string) => Array.from({ length: 50 }, (_, i) => `${prefix}${i}`);
  try {
    await put(Array.from({ length: 200 }, (_, i) => `a${i}`), vectors.subarray(0, 200 * DIM));
    assert.equal(await gauge(), 0, 'the training items are inside the ranges');
    const far = vectors.slice(200 * DIM, 250 * DIM).map((x) => 5 * x);
    const inside = vectors.slice(0, 50 * DIM).map((x) => 0.5 * x);
    await put(ids('far'), far);
    const clamped = await gauge();
    assert.ok(clamped > 40 && clamped <= 50, `${clamped} of the 50 items at 5x the scale`);
    await put(ids('far'), inside); // the same items, new vectors in new slots
    assert.equal(await gauge(), 0, 'their old slots were released');
    await put(ids('again'), far);
    assert.equal(await gauge(), clamped);
    assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ids('again') } })).statusCode, 200);
    assert.equal(await gauge(), 0, 'deleted items no longer count');
  } finally {
    await svc.close();
  }
});
