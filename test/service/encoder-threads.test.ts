/**
 * How the served model's encoder pool is sized (model-space.ts encoderThreads, through SidxService.open's
 * encoderUse): for serving, one single-threaded worker per two cores; for a bulk job (sidx index, sidx eval), one
 * per core. A set encoder.workers wins either way.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { encoderThreads, type EncoderUse } from '../../src/service/model-space.ts';
import { kServiceTestHooks, SidxService } from '../../src/service/sidx-service.ts';
import { bundleDir, silentLog, writeTestBundle } from '../helpers/service.ts';

async function poolWorkers(root: string, use: EncoderUse | undefined, workers = 0): Promise<number> {
  const config = loadConfig({ storage: { dataDir: join(root, `data-${use}-${workers}`) }, model: { dir: bundleDir(root) }, encoder: { workers } }, {});
  const service = await SidxService.open(config, silentLog, use === undefined ? {} : { encoderUse: use });
  try {
    const n = service[kServiceTestHooks].pool().workers;
    assert.equal(n, encoderThreads(config.encoder, use).workers);
    return n;
  } finally {
    await service.close();
  }
}

test('a served model gets one encoder worker per two cores, a bulk job one per core, a set count either way', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sidx-encoder-threads-'));
  try {
    await writeTestBundle(bundleDir(root), { dim: 8, levels: 2, codebookSize: 4, seed: 1 });
    const cores = availableParallelism();
    const serving = await poolWorkers(root, undefined);
    const batch = await poolWorkers(root, 'batch');
    assert.equal(serving, Math.max(1, Math.min(4, Math.floor(cores / 2))));
    assert.equal(batch, Math.min(4, cores));
    if (cores >= 2) assert.ok(serving < batch, `serving ${serving} workers, bulk ${batch}`);
    assert.equal(await poolWorkers(root, undefined, 3), 3);
    assert.equal(await poolWorkers(root, 'batch', 3), 3);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
