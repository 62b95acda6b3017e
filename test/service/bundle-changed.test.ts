/**
 * A registered model whose files changed on disk (a bundle rebuilt in place under the same id): the service refuses
 * to open with it, whether it is the configured bundle or the one the catalog is served by, and the error names both
 * digests and what to do. Restoring the registered bytes opens it again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSidxError } from '../../src/errors.ts';
import { tempDir } from '../helpers/paths.ts';
import { startService, writeTestBundle } from '../helpers/service.ts';

const DIM = 8;

/** Rewrites `bundle`'s model.json as the same manifest in other bytes (as a rebuild recording another timing would); returns a restore. */
function rebuildInPlace(bundle: string): () => void {
  const path = join(bundle, 'model.json');
  const registered = readFileSync(path, 'utf8');
  const rebuilt = JSON.stringify(JSON.parse(registered));
  assert.notEqual(rebuilt, registered);
  writeFileSync(path, rebuilt);
  return () => writeFileSync(path, registered);
}

function refusedWithHint(code: string, what: RegExp) {
  return (err: unknown) => {
    assert.ok(isSidxError(err) && err.code === code, String(err));
    assert.match(err.message, what);
    assert.match(err.message, /keep \(or put back\) the registered files at that path; a new or rebuilt bundle needs a directory and an id of its own \(model\.json `id`, sidx train --id\): register it \(POST \/v1\/models\), then re-index to it, or activate it while the catalog is empty$/);
    return true;
  };
}

test('the configured bundle rebuilt in place under its registered id is refused with both digests and the way out', async () => {
  const tmp = tempDir();
  try {
    const bundle = join(tmp.dir, 'model');
    const dataDir = join(tmp.dir, 'data');
    await writeTestBundle(bundle, { dim: DIM, levels: 2, codebookSize: 4, seed: 1 });
    await (await startService(dataDir, bundle)).close();
    const restore = rebuildInPlace(bundle);
    await assert.rejects(startService(dataDir, bundle),
      refusedWithHint('SIDX_ERR_INVALID_INPUT', /model \S+ is already registered with sha256 [0-9a-f]{64} \(its files at \S+\/model\), not this bundle's [0-9a-f]{64}: /));
    restore();
    await (await startService(dataDir, bundle)).close();
  } finally {
    tmp.cleanup();
  }
});

test('the bundle a catalog is served by, changed since, is refused at start though another one is configured', async () => {
  const tmp = tempDir();
  try {
    const served = join(tmp.dir, 'served');
    const other = join(tmp.dir, 'other');
    const dataDir = join(tmp.dir, 'data');
    await writeTestBundle(served, { dim: DIM, levels: 2, codebookSize: 4, seed: 1 });
    await writeTestBundle(other, { dim: DIM, levels: 2, codebookSize: 4, seed: 2 });
    const first = await startService(dataDir, served);
    await first.service.upsert([{ id: 'a', vector: new Float32Array(DIM).fill(0.5) }]);
    await first.close();
    const restore = rebuildInPlace(served);
    await assert.rejects(startService(dataDir, other),
      refusedWithHint('SIDX_ERR_MODEL_BUNDLE', /the bundle changed since model \S+ was registered \(sha256 [0-9a-f]{64}, registered [0-9a-f]{64}\): /));
    restore();
    const again = await startService(dataDir, other);
    try {
      assert.equal(again.service.readiness().items, 1);
    } finally {
      await again.close();
    }
  } finally {
    tmp.cleanup();
  }
});
