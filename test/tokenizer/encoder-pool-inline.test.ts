/**
 * The encoder pool's inline lane (inline-lane.ts): a lone single-row call that asks for it runs on the calling
 * thread, bit for bit the workers' answer, and only when no worker run is in flight or queued; every other call
 * (no flag, several rows, a busy pool, a held queue) goes to the workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool, kPoolTestHooks, type BeamResult, type EncodeResult } from '../../src/tokenizer/encoder-pool.ts';
import { repoRoot } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const plain = (r: BeamResult) => ({ codes: [...r.codes], levels: r.levels.map((l) => ({ ...l, codes: [...l.codes], scores: [...l.scores] })) });
const plainEnc = (r: EncodeResult) => ({ codes: [...r.codes], topCodes: [...r.topCodes], topDistances: [...r.topDistances] });

async function inlinePool(model: string): Promise<EncoderPool> {
  const pool = await EncoderPool.create(await loadBundle(join(repoRoot, model)), { workers: 1, provider: 'cpu', intraOpThreads: 1, inline: true });
  await sleep(100);
  assert.equal(pool[kPoolTestHooks].inlineFree(), false, 'the lane opens on the first call that asks for it, not at start');
  const runs = pool[kPoolTestHooks].runs();
  await pool.encode(randomMatrix(1, pool.inputDim, 2), 1, { inline: true });
  assert.equal(pool[kPoolTestHooks].runs(), runs + 1, 'that first call went to a worker');
  for (let i = 0; i < 200 && !pool[kPoolTestHooks].inlineFree(); i++) await sleep(10);
  assert.ok(pool[kPoolTestHooks].inlineFree(), 'the inline lane opened');
  return pool;
}

for (const model of ['models/default', 'models/rqkmeans-3x256']) {
  test(`${model}: a lone single-row call asking for the inline lane gets the workers' answer without a worker run`, async () => {
    const pool = await inlinePool(model);
    const hooks = pool[kPoolTestHooks];
    try {
      const dim = pool.inputDim;
      const x = randomMatrix(6, dim, 11);
      for (let i = 0; i < 6; i++) {
        const row = x.subarray(i * dim, (i + 1) * dim);
        const runs = hooks.runs();
        const viaWorker = await pool.beam(row, 1, 32, 1);
        const viaWorkerEnc = await pool.encode(row, 1);
        assert.equal(hooks.runs(), runs + 2, 'calls without the flag go to the workers');
        assert.deepEqual(plain(await pool.beam(row, 1, 32, 1, { inline: true })), plain(viaWorker), `row ${i}: beam`);
        assert.deepEqual(plainEnc(await pool.encode(row, 1, { inline: true })), plainEnc(viaWorkerEnc), `row ${i}: encode`);
        assert.equal(hooks.runs(), runs + 2, 'the inline calls started no worker run');
      }
      assert.deepEqual(x.subarray(0, 3), randomMatrix(6, dim, 11).subarray(0, 3), 'the caller\'s rows are untouched');
    } finally {
      await pool.close();
    }
  });
}

test('the workers take the call when the pool is busy, the queue is held, or the call has several rows', async () => {
  const pool = await inlinePool('models/default');
  const hooks = pool[kPoolTestHooks];
  try {
    const dim = pool.inputDim;
    const x = randomMatrix(2, dim, 12);
    const row = x.subarray(0, dim);
    let runs = hooks.runs();
    await pool.beam(x, 2, 32, 1, { inline: true });
    assert.equal(hooks.runs(), runs + 1, 'two rows: a worker run');

    runs = hooks.runs();
    const busy = pool.beam(row, 1, 32, 1); // in flight on the only worker
    const queued = pool.beam(row, 1, 32, 1, { inline: true });
    const [a, b] = await Promise.all([busy, queued]);
    assert.deepEqual(plain(b), plain(a));
    assert.equal(hooks.runs(), runs + 2, 'a worker run in flight: the inline call waits for a worker');

    runs = hooks.runs();
    const release = hooks.hold();
    const held = pool.encode(row, 1, { inline: true });
    await sleep(20);
    assert.equal(hooks.runs(), runs, 'held: nothing ran');
    release();
    await held;
    assert.equal(hooks.runs(), runs + 1);
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.encode(randomMatrix(1, pool.inputDim, 1), 1, { inline: true }), { code: 'SIDX_ERR_ENCODER' });
});

test('without the option the pool opens no inline lane and every call goes to the workers', async () => {
  const pool = await EncoderPool.create(await loadBundle(join(repoRoot, 'models/default')), { workers: 1, provider: 'cpu', intraOpThreads: 1 });
  try {
    await sleep(100);
    assert.equal(pool[kPoolTestHooks].inlineFree(), false);
    const runs = pool[kPoolTestHooks].runs();
    await pool.beam(randomMatrix(1, pool.inputDim, 3), 1, 32, 1, { inline: true });
    assert.equal(pool[kPoolTestHooks].runs(), runs + 1);
  } finally {
    await pool.close();
  }
});
