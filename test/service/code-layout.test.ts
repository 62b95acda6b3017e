/**
 * The codes' layout in SID order end to end (service/code-layout.ts, config vectors.layout): after writes over HTTP
 * stop, the served model's keys in SID order hold rows 0, 1, ... of the codes in memory; later writes are laid out
 * again; a restart lays out the codes it read; a re-index's swap lays them out in the new model's order; answers are
 * the same before and after; "arrival" leaves rows at their slots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import type { CodedSlotStore } from '../../src/vector/sq8-slot-store.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';
import { keysInOrder } from '../helpers/posting-order.ts';

const DIM = 8;
const N = 600;
const vectors = randomMatrix(N + 100, DIM, 11);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));

async function call(svc: RunningService, url: string, payload: unknown) {
  const res = await svc.app.inject({ method: 'POST', url, payload: payload as never });
  assert.ok(res.statusCode < 300, `${url}: ${res.body}`);
  return res.json();
}

async function upsert(svc: RunningService, from: number, to: number, shift = 0): Promise<void> {
  for (let i = from; i < to; i += 100) {
    await call(svc, '/v1/items', { items: Array.from({ length: Math.min(100, to - i) }, (_, j) => ({ id: `i${i + j}`, embedding: emb(i + j + shift) })) });
  }
}

async function answers(svc: RunningService): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < N; i += 13) {
    const { timingsMs: _t, ...rest } = await call(svc, '/v1/retrieve', { embedding: emb(i), k: 20 });
    out.push(rest);
  }
  return out;
}

/** The codes' rows of the served model's keys in SID order. */
function rowsInSidOrder(svc: RunningService): { keys: number; rows: Int32Array } {
  const hooks = svc.service[kServiceTestHooks];
  const keys = keysInOrder(hooks.postings().index(svc.service.model.version)!);
  return { keys: keys.length, rows: (hooks.vectors() as CodedSlotStore).codes.layout.rowsOf(keys) };
}

const ascendingFromZero = (rows: Int32Array) => rows.every((r, i) => r === i);

/** Waits (up to 10 s) until the background layout has finished `count` layouts. */
async function layoutsDone(svc: RunningService, count: number): Promise<void> {
  const layout = svc.service[kServiceTestHooks].layout()!;
  for (let waited = 0; layout.done < count || layout.running; waited += 50) {
    assert.ok(waited < 10_000, `${layout.done} layouts after 10 s, waiting for ${count}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A service over a fresh 3-level bundle with sq8 codes (`vectors` added to that config), closed and removed after `body`. */
async function withSq8Service(vectors: Record<string, unknown>, body: (svc: RunningService) => Promise<void>): Promise<void> {
  const tmp = tempDir();
  const model = join(tmp.dir, 'model');
  await writeTestBundle(model, { dim: DIM, levels: 3, codebookSize: 4, seed: 3 });
  const svc = await startService(join(tmp.dir, 'data'), model, {}, { vectors: { storage: 'sq8', trainSize: 50, ...vectors } });
  try {
    await body(svc);
  } finally {
    await svc.close();
    tmp.cleanup();
  }
}

test('codes layout: laid out in SID order after writes and after a restart, the same answers', async () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const model = join(tmp.dir, 'models', 'a');
  await writeTestBundle(model, { dim: DIM, levels: 3, codebookSize: 4, seed: 3 });
  const b = await writeTestBundle(join(tmp.dir, 'models', 'b'), { dim: DIM, levels: 2, codebookSize: 8, seed: 4 });
  const open = () => startService(dataDir, model, {}, { vectors: { storage: 'sq8', trainSize: 50 }, model: { registryDir: join(tmp.dir, 'models') } });
  let svc = await open();
  try {
    await upsert(svc, 0, N);
    const before = await answers(svc);
    await layoutsDone(svc, 1);
    const laid = rowsInSidOrder(svc);
    assert.equal(laid.keys, N);
    assert.ok(ascendingFromZero(laid.rows), 'the keys in SID order hold rows 0, 1, ...');
    assert.deepEqual(await answers(svc), before, 'answers unchanged by the layout');

    // Re-upserts (new rows) and new items: laid out again once the writes stop.
    const done = svc.service[kServiceTestHooks].layout()!.done;
    await upsert(svc, 0, 50, 650);
    await upsert(svc, N, N + 100);
    assert.ok(!ascendingFromZero(rowsInSidOrder(svc).rows), 'the new rows are out of order until the next layout');
    await layoutsDone(svc, done + 1);
    const again = rowsInSidOrder(svc);
    assert.equal(again.keys, N + 100);
    assert.ok(ascendingFromZero(again.rows));
    const after = await answers(svc);

    await svc.close();
    svc = await open();
    await layoutsDone(svc, 1);
    assert.ok(ascendingFromZero(rowsInSidOrder(svc).rows), 'laid out again after a restart');
    assert.deepEqual(await answers(svc), after);

    // A re-index swaps the served model: the codes follow the new model's SID order.
    const oldOrder = rowsInSidOrder(svc);
    const doneBefore = svc.service[kServiceTestHooks].layout()!.done;
    await call(svc, '/v1/models', { path: 'b' });
    const job = await call(svc, '/v1/reindex', { model: b.id, batchSize: 100 });
    for (let t = 0; (await svc.app.inject({ method: 'GET', url: `/v1/jobs/${job.id}` })).json().phase !== 'done'; t++) {
      assert.ok(t < 3000, 'the re-index finishes');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(svc.service.model.id, b.id);
    await layoutsDone(svc, doneBefore + 1);
    const swapped = rowsInSidOrder(svc);
    assert.equal(swapped.keys, oldOrder.keys);
    assert.ok(ascendingFromZero(swapped.rows), 'laid out in the new model\'s SID order');
  } finally {
    await svc.close();
    tmp.cleanup();
  }
});

test('codes layout: sidx_vector_layout_pending_items counts the items a layout has still to place, 0 once done', () => withSq8Service({}, async (svc) => {
  const gauge = async () => {
    const text = await svc.service.metrics.registry.metrics();
    const m = /^sidx_vector_layout_pending_items (\d+)$/m.exec(text);
    assert.ok(m, 'the gauge is exported');
    return Number(m[1]);
  };
  assert.equal(await gauge(), 0, 'nothing to lay out before any write');
  await upsert(svc, 0, N);
  const layout = svc.service[kServiceTestHooks].layout()!;
  // The layout starts on a timer once the writes pause and moves on one event-loop turn at a time: caught at its
  // first turn, it has planned every item and placed none.
  const t0 = performance.now();
  while (!layout.running) {
    assert.ok(performance.now() - t0 < 10_000, 'a layout starts within 10 s of the writes');
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(layout.pending, N);
  assert.equal(await gauge(), N, 'the registry reads it within the same turn');
  await layoutsDone(svc, 1);
  assert.equal(layout.pending, 0);
  assert.equal(await gauge(), 0);
  const scraped = await svc.app.inject({ method: 'GET', url: '/metrics' });
  assert.match(scraped.body, /^sidx_vector_layout_pending_items 0$/m);
}));

test('codes layout: vectors.layout "arrival" leaves every row at its slot', () => withSq8Service({ layout: 'arrival' }, async (svc) => {
  await upsert(svc, 0, N);
  assert.equal(svc.service[kServiceTestHooks].layout(), null);
  await new Promise((r) => setTimeout(r, 1200));
  const hooks = svc.service[kServiceTestHooks];
  const keys = keysInOrder(hooks.postings().index(svc.service.model.version)!);
  const store = hooks.vectors() as CodedSlotStore;
  const slots = store.codes.layout.rowsOf(keys);
  assert.ok(!ascendingFromZero(slots), 'arrival order differs from SID order here');
}));
