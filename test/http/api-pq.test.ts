/**
 * Config `vectors.storage` pq through HTTP: /v1/retrieve answers like the f32 storage at the top (same items, same
 * exact scores) with more candidates than it re-scores, across a restart that loads the codes file, and after a
 * torn codes file (rebuilt from LMDB); switching storages removes the codes files the new mode would not keep
 * current; a vectors.pqM that does not divide the model's dimension fails the start naming the setting, before any
 * file changes; SIDX__VECTORS__PQ_M is read; sidx_vector_clamped_items counts the items whose residual is beyond the
 * codebooks' reach.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { SidxError } from '../../src/errors.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { fillItems, topAnswers } from '../helpers/retrieve-answers.ts';
import { clampedItemsGauge, putRows, startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 24;
const N = 800;
const K = 10;
const M = 6;
const RESCORE = 100;
const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const vectors = randomMatrix(N, DIM, 21);
const queries = randomMatrix(8, DIM, 22);
const pq = { vectors: { storage: 'pq' as const, trainSize: 300, rescore: RESCORE, pqM: M } };
/** Header: 16 bytes, the codebooks (256 x dim floats) and the flag's limit (a float), padded to 4 KiB. */
const HEADER = Math.ceil((16 + 1024 * DIM + 4) / 4096) * 4096;
/** Bytes per slot: m codes (a flagged row's last one 255). */
const ROW = M;

after(() => tmp.cleanup());

const fill = (svc: RunningService) => fillItems(svc, vectors, DIM);
const answers = (svc: RunningService) => topAnswers(svc, queries, DIM, K, RESCORE);

test('pq answers like f32 at the top, after a restart from the codes file and after a torn codes file', async () => {
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 8, seed: 3 });
  const f32 = await startService(join(tmp.dir, 'f32'), modelDir);
  await fill(f32);
  const want = await answers(f32);
  await f32.close();

  const dataDir = join(tmp.dir, 'pq');
  let svc = await startService(dataDir, modelDir, {}, pq);
  await fill(svc);
  assert.deepEqual(await answers(svc), want, 'same items and exact scores as f32');
  assert.equal((await svc.app.inject({ method: 'GET', url: '/readyz' })).json().vectors, N - 2);
  await svc.close();
  const codes = join(dataDir, 'vectors.pq');
  assert.equal(statSync(codes).size, HEADER + N * ROW, 'm codes per slot after the header');

  svc = await startService(dataDir, modelDir, {}, pq);
  assert.deepEqual(await answers(svc), want, 'reopened from the codes file');
  await svc.close();

  truncateSync(codes, statSync(codes).size - 5);
  svc = await startService(dataDir, modelDir, {}, pq);
  assert.deepEqual(await answers(svc), want, 'rebuilt from LMDB after a torn codes file');
  await svc.close();
  assert.equal(statSync(codes).size, HEADER + N * ROW, 'the rebuild rewrote the codes file');

  // A pqM that does not divide 24 fails the start and leaves the files alone.
  await assert.rejects(startService(dataDir, modelDir, {}, { vectors: { ...pq.vectors, pqM: 5 } }),
    (e: unknown) => e instanceof SidxError && e.code === 'SIDX_ERR_CONFIG' && e.field === 'vectors.pqM' && /5 does not divide the model's dimension 24/.test(e.message));
  assert.equal(statSync(codes).size, HEADER + N * ROW);

  // sq8 drops the pq codes (it would not keep them current) and pq the sq8 codes; f32 drops both.
  const sq8Codes = join(dataDir, 'vectors.sq8');
  svc = await startService(dataDir, modelDir, {}, { vectors: { storage: 'sq8', trainSize: 300, rescore: RESCORE } });
  assert.deepEqual(await answers(svc), want, 'sq8 on the same catalog');
  await svc.close();
  assert.equal(existsSync(codes), false, 'sq8 removed vectors.pq');
  assert.equal(existsSync(sq8Codes), true);
  svc = await startService(dataDir, modelDir, {}, pq);
  assert.deepEqual(await answers(svc), want, 'pq trained again at open');
  await svc.close();
  assert.equal(existsSync(sq8Codes), false, 'pq removed vectors.sq8');
  assert.equal(statSync(codes).size, HEADER + N * ROW);
  svc = await startService(dataDir, modelDir);
  await svc.close();
  assert.equal(existsSync(codes), false, 'f32 removed vectors.pq');
});

test('SIDX__VECTORS__PQ_M and STORAGE=pq are read; 0 (dim / 8) and mode-default rescore by default', () => {
  const config = loadConfig({}, { SIDX__VECTORS__STORAGE: 'pq', SIDX__VECTORS__PQ_M: '32' });
  assert.deepEqual({ ...config.vectors }, { storage: 'pq', rerankOffThread: true, rescore: 0, trainSize: 10_000, hugePages: true, layout: 'sid', pqM: 32 });
  assert.throws(() => loadConfig({}, { SIDX__VECTORS__PQ_M: '-1' }),
    (e: unknown) => e instanceof SidxError && e.code === 'SIDX_ERR_CONFIG' && e.field === 'vectors.pqM');
});

test('sidx_vector_clamped_items counts the pq items whose residual is beyond the codebooks\' reach: re-upserts and deletes release their old slots', async (t) => {
  const dataDir = join(tmp.dir, 'pq-flagged');
  // 600 training items: from 512 on, pqTrain holds every tenth out of the k-means to measure the limit.
  const svc = await startService(dataDir, modelDir, {}, { vectors: { storage: 'pq', trainSize: 600, rescore: RESCORE, pqM: M } });
  const gauge = () => clampedItemsGauge(svc);
  const put = (ids: string[], rows: Float32Array) => putRows(svc, DIM, ids, rows);
  const ids = (prefix: string) => Array.from({ length: 50 }, (_, i) => `${prefix}${i}`);
  try {
    for (let s = 0; s < 600; s += 200) await put(Array.from({ length: 200 }, (_, i) => `a${s + i}`), vectors.subarray(s * DIM, (s + 200) * DIM));
    assert.equal(await svc.service[kServiceTestHooks].vectors().training?.(), true, 'trained in the background');
    const base = await gauge();
    t.diagnostic(`${base} of the 600 training items flagged`);
    assert.ok(base < 0.05 * 600, `few training items beyond the limit (${base})`);
    const far = vectors.slice(600 * DIM, 650 * DIM).map((x) => 5 * x);
    const inside = vectors.slice(0, 50 * DIM).map((x) => 0.5 * x);
    await put(ids('far'), far);
    const flagged = (await gauge()) - base;
    assert.equal(flagged, 50, 'the 50 items at 5x the scale');
    await put(ids('far'), inside); // the same items, new vectors in new slots
    assert.equal(await gauge(), base, 'their old slots were released');
    await put(ids('again'), far);
    assert.equal(await gauge(), base + flagged);
    assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ids('again') } })).statusCode, 200);
    assert.equal(await gauge(), base, 'deleted items no longer count');
  } finally {
    await svc.close();
  }
});
