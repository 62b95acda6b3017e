/**
 * kill -9 at random moments under concurrent batch writes (harness: test/helpers/crash-harness.ts), with the default
 * vector storage (sq8) and with pq, whose codebooks train in the background once 256 items are held. CI: 20 + 12
 * kills. Long version (SIDX_LONG=1): 100 + 60.
 */
import { test, after, type TestContext } from 'node:test';
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

/** Runs the kill -9 rounds on a fresh data directory named `name`, with the test model of `seed` and `env`. */
async function crashRounds(t: TestContext, name: string, rounds: number, seed: number, env: Record<string, string> = {}) {
  const modelDir = join(tmp.dir, `model-${name}`);
  await writeTestBundle(modelDir, { dim: DIM, levels: 3, codebookSize: 16, seed });
  const summary = await runCrashRounds({
    dataDir: join(tmp.dir, `data-${name}`),
    modelDir,
    dim: DIM,
    rounds,
    seed: Number(process.env.SIDX_CRASH_SEED ?? 20240611 + seed),
    env,
    log: LONG ? (line) => t.diagnostic(line) : undefined,
  });
  t.diagnostic(JSON.stringify(summary));
  assert.ok(summary.acknowledgedBatches > rounds, 'batches were acknowledged between kills');
  return summary;
}

test(`acknowledged writes survive ${ROUNDS} kill -9s; catalog verifies; FAISS count equals LMDB count`, { timeout: LONG ? 3_600_000 : 300_000 }, async (t) => {
  const summary = await crashRounds(t, 'sq8', ROUNDS, 11);
  assert.ok(summary.lostAnswers > 0, 'some kills landed with batches in flight');
  assert.ok(summary.deletedItems > 0, 'deletes were exercised');
});

test(`pq storage: acknowledged writes survive ${PQ_ROUNDS} kill -9s; its codebooks train in the background from the 256th item`, { timeout: LONG ? 3_600_000 : 300_000 }, async (t) => {
  const summary = await crashRounds(t, 'pq', PQ_ROUNDS, 12, { SIDX__VECTORS__STORAGE: 'pq', SIDX__VECTORS__TRAIN_SIZE: '256' });
  assert.ok(summary.liveItems > 256, 'the catalog grew past the training size');
});
