/**
 * kill -9 at random moments under concurrent batch writes (harness: test/helpers/crash-harness.ts), with the default
 * vector storage (sq8) and with pq, whose codebooks train in the background once 256 items are held. CI: 20 + 12
 * kills. Long version (SIDX_LONG=1): 100 + 60.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { runCrashRounds } from '../helpers/crash-harness.ts';

const LONG = process.env.SIDX_LONG === '1';
const ROUNDS = LONG ? 100 : 20;
const PQ_ROUNDS = LONG ? 60 : 12;
const DIM = 32;
const tmp = tempDir('sidx-crash-');
after(() => tmp.cleanup());

test(`acknowledged writes survive ${ROUNDS} kill -9s; catalog verifies; FAISS count equals LMDB count`, { timeout: LONG ? 3_600_000 : 300_000 }, async (t) => {
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 3, codebookSize: 16, seed: 11 });
  const summary = await runCrashRounds({
    dataDir: join(tmp.dir, 'data'),
    modelDir,
    dim: DIM,
    rounds: ROUNDS,
    seed: Number(process.env.SIDX_CRASH_SEED ?? 20240611),
    log: LONG ? (line) => t.diagnostic(line) : undefined,
  });
  t.diagnostic(JSON.stringify(summary));
  assert.ok(summary.acknowledgedBatches > ROUNDS, 'batches were acknowledged between kills');
  assert.ok(summary.lostAnswers > 0, 'some kills landed with batches in flight');
  assert.ok(summary.deletedItems > 0, 'deletes were exercised');
});

test(`pq storage: acknowledged writes survive ${PQ_ROUNDS} kill -9s; its codebooks train in the background from the 256th item`, { timeout: LONG ? 3_600_000 : 300_000 }, async (t) => {
  const modelDir = join(tmp.dir, 'model-pq');
  await writeTestBundle(modelDir, { dim: DIM, levels: 3, codebookSize: 16, seed: 12 });
  const summary = await runCrashRounds({
    dataDir: join(tmp.dir, 'data-pq'),
    modelDir,
    dim: DIM,
    rounds: PQ_ROUNDS,
    seed: Number(process.env.SIDX_CRASH_SEED ?? 20261207),
    env: { SIDX__VECTORS__STORAGE: 'pq', SIDX__VECTORS__TRAIN_SIZE: '256' },
    log: LONG ? (line) => t.diagnostic(line) : undefined,
  });
  t.diagnostic(JSON.stringify(summary));
  assert.ok(summary.acknowledgedBatches > PQ_ROUNDS, 'batches were acknowledged between kills');
  assert.ok(summary.liveItems > 256, 'the catalog grew past the training size');
});
