/**
 * A finished re-index reports what it did: GET /v1/jobs/{id} of a succeeded job shows processed equal to the
 * catalog's items and the rate of its encode phase, in the process that ran it and after a restart (the job's
 * state is in the control plane). A job resumed after a shutdown and finished by the next process likewise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { twoModelService, type RunningService } from '../helpers/service.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DIM = 8;
const tmp = tempDir();
after(() => tmp.cleanup());

async function call(svc: RunningService, method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await svc.app.inject({ method, url, payload: payload as never });
  return { status: res.statusCode, body: res.json() };
}

async function job(svc: RunningService, id: string, until: (j: Record<string, any>) => boolean) {
  for (;;) {
    const j = (await call(svc, 'GET', `/v1/jobs/${id}`)).body;
    if (until(j)) return j;
    await sleep(10);
  }
}

/** A service on a fresh data directory holding `n` items, with model b registered: its id and a reopener. */
async function setup(name: string, n: number) {
  const { idB, open } = await twoModelService(join(tmp.dir, name), DIM);
  const svc = await open();
  const vectors = randomMatrix(n, DIM, 9);
  const items = Array.from({ length: n }, (_, i) => ({ id: `i${i}`, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  assert.equal((await call(svc, 'POST', '/v1/items', { items })).status, 200);
  assert.equal((await call(svc, 'POST', '/v1/models', { path: 'b' })).status, 201);
  return { svc, idB, open };
}

function assertFinal(j: Record<string, any>, n: number, what: string) {
  assert.deepEqual([j.status, j.phase, j.processed, j.total, j.error], ['succeeded', 'done', n, n, null], `${what}: ${JSON.stringify(j)}`);
  assert.equal(typeof j.itemsPerSecond, 'number', `${what}: the encode phase's rate (${JSON.stringify(j)})`);
  assert.ok(j.itemsPerSecond > 0, `${what}: ${j.itemsPerSecond}`);
  assert.equal(j.etaSeconds, null, what);
}

test('a finished re-index of 50 items shows processed 50 and its rate, also after a restart', async () => {
  const { svc, idB, open } = await setup('done', 50);
  let view: Record<string, any>;
  try {
    const started = await call(svc, 'POST', '/v1/reindex', { model: idB, batchSize: 10 });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    view = await job(svc, started.body.id, (j) => j.status !== 'running');
    assertFinal(view, 50, 'in the process that ran it');
  } finally {
    await svc.close();
  }
  const again = await open();
  try {
    const reread = (await call(again, 'GET', `/v1/jobs/${view.id}`)).body;
    assertFinal(reread, 50, 'after a restart');
    assert.equal(reread.itemsPerSecond, view.itemsPerSecond, 'the rate recorded when the encode phase ended');
  } finally {
    await again.close();
  }
});

test('a re-index stopped by a shutdown and finished by the next process reports its final counts', async () => {
  const N = 200;
  const { svc, idB, open } = await setup('resumed', N);
  const started = await call(svc, 'POST', '/v1/reindex', { model: idB, batchSize: 10, maxItemsPerSecond: 400 });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  await job(svc, started.body.id, (j) => j.processed >= 30);
  await svc.close(); // stops at a batch boundary; the job stays running
  const again = await open();
  try {
    assertFinal(await job(again, started.body.id, (j) => j.status !== 'running'), N, 'resumed and finished');
  } finally {
    await again.close();
  }
});
