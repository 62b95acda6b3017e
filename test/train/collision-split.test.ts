import assert from 'node:assert/strict';
import { test } from 'node:test';

import { splitCollisions } from '../../src/train/collision-split.ts';
import { sidQualityMetrics } from '../../src/train/metrics.ts';
import { paramView } from '../../src/train/rqvae-model.ts';
import { encodeAll } from '../../src/train/rqvae-runtime.ts';
import { trainRqVae } from '../../src/train/rqvae.ts';
import { randomMatrix } from '../helpers/random.ts';

const DIM = 8;

/** 40 random rows, then 6 near-copies (noise 1e-4) of one more row: those 6 share one SID. */
function data(): Float32Array {
  const spread = randomMatrix(41, DIM, 21);
  const noise = randomMatrix(6, DIM, 22, 1e-4);
  const rows = new Float32Array(46 * DIM);
  rows.set(spread.subarray(0, 40 * DIM));
  for (let i = 0; i < 6; i++) {
    for (let j = 0; j < DIM; j++) rows[(40 + i) * DIM + j] = spread[40 * DIM + j]! + noise[i * DIM + j]!;
  }
  return rows;
}

test('the collision-aware last level splits an over-full SID by moving last-level codewords only; codes stay argmin', async () => {
  const x = data();
  const res = await trainRqVae(x, DIM, {
    method: 'rqvae', codebookSizes: [8, 16], hidden: [16], latentDim: 4, epochs: 3, batchSize: 16, seed: 1,
    threads: 1, evalEvery: 0,
  });
  const before = sidQualityMetrics(res.codes, 46, [8, 16]);
  assert.ok(before.maxItemsPerSid >= 6, `the near-copies share a SID before: max ${before.maxItemsPerSid}`);
  const { layout, params } = res.model;
  const level0 = Float32Array.from(paramView(params, layout.byName.get(layout.codebooks[0]!)!));
  const level1 = Float32Array.from(paramView(params, layout.byName.get(layout.codebooks[1]!)!));

  const split = await splitCollisions(res.model, res.inputs, 2, { threads: 1, maxMoves: 16 });
  assert.ok(split.maxItemsPerSid <= 2, `max items per SID after: ${split.maxItemsPerSid}`);
  assert.ok(split.moved >= 2 && split.moved <= 16, `moved ${split.moved}`);
  const after = sidQualityMetrics(split.codes, 46, [8, 16]);
  assert.equal(after.maxItemsPerSid, split.maxItemsPerSid);
  // Only the last codebook moved, and only `moved` of its codewords.
  assert.deepEqual(paramView(params, layout.byName.get(layout.codebooks[0]!)!), level0);
  const now = paramView(params, layout.byName.get(layout.codebooks[1]!)!);
  let changed = 0;
  for (let c = 0; c < 16; c++) if (now.subarray(c * 4, c * 4 + 4).some((v, j) => v !== level1[c * 4 + j])) changed++;
  assert.equal(changed, split.moved);
  // The codes are the exported (argmin) encoder's for the moved codebook.
  assert.deepEqual(await encodeAll(res.model, res.inputs, 1), split.codes);
  // Level-0 codes did not change.
  for (let i = 0; i < 46; i++) assert.equal(split.codes[i * 2], res.codes[i * 2]);
});

test('the trainer applies it with maxItemsPerSid (at most K / 8 codewords move) and reports it', async () => {
  const events: { moved: number; maxItemsPerSid: number }[] = [];
  const res = await trainRqVae(data(), DIM, {
    method: 'rqvae', codebookSizes: [8, 32], hidden: [16], latentDim: 4, epochs: 3, batchSize: 16, seed: 1,
    threads: 1, evalEvery: 0, maxItemsPerSid: 3,
    onProgress: (e) => { if (e.kind === 'split') events.push(e); },
  });
  assert.equal(events.length, 1);
  assert.ok(res.metrics.maxItemsPerSid <= 3, `${res.metrics.maxItemsPerSid}`);
  assert.equal(res.metrics.maxItemsPerSid, events[0]!.maxItemsPerSid);
});
