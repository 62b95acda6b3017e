import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SidxError } from '../../src/errors.ts';
import { DEFAULT_STEPS, defaultBatchSize, resolveOptions } from '../../src/train/rqvae-options.ts';

test('default batch: rows / 8 within 64..2048, never more than the rows', () => {
  assert.equal(defaultBatchSize(1585), 198);
  assert.equal(defaultBatchSize(9922), 1240);
  assert.equal(defaultBatchSize(10_000_000), 2048);
  assert.equal(defaultBatchSize(300), 64);
  assert.equal(defaultBatchSize(40), 40);
});

test('the schedule is in steps: epochs = steps / full batches per epoch, rounded up; --epochs overrides', () => {
  const sci = resolveOptions({ method: 'rqvae', codebookSizes: [64, 64, 64] }, 1585);
  assert.deepEqual([sci.batchSize, sci.epochs, sci.steps, sci.warmupEpochs, sci.evalEvery], [198, 125, 1000, 33, 13]);
  const big = resolveOptions({ method: 'rqvae', codebookSizes: [256] }, 10_000_000);
  assert.deepEqual([big.batchSize, big.epochs, big.steps], [2048, 1, 4882]);
  assert.equal(resolveOptions({ method: 'rqvae', codebookSizes: [8], steps: 10 }, 1585).epochs, 2);
  const fixed = resolveOptions({ method: 'rqvae', codebookSizes: [8], epochs: 20, batchSize: 4096 }, 1585);
  assert.deepEqual([fixed.batchSize, fixed.epochs, fixed.steps], [1585, 20, 20]);
  assert.ok(DEFAULT_STEPS >= 1000);
  assert.throws(() => resolveOptions({ method: 'rqvae', codebookSizes: [8], steps: 10, epochs: 2 }, 100),
    (e: unknown) => e instanceof SidxError && e.field === 'steps');
  assert.throws(() => resolveOptions({ method: 'rqvae', codebookSizes: [8], steps: 0 }, 100),
    (e: unknown) => e instanceof SidxError && e.field === 'steps');
});
