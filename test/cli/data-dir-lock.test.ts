/**
 * Two `sidx serve` on one data directory (issue 14): the second is refused with the first one's pid, before it
 * touches the stores, and `sidx index` too; after kill -9 of the first, its lock is stale and a new server starts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../../src/io/npy.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { runCli } from '../helpers/cli.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { exited, exitedAndRead, startServer, waitReady } from '../helpers/server-process.ts';

const tmp = tempDir();
const modelDir = join(tmp.dir, 'model');
const dataDir = join(tmp.dir, 'data');
after(() => tmp.cleanup());

test('a second sidx serve or sidx index on a data directory in use is refused naming the holder\'s pid', async (t) => {
  await writeTestBundle(modelDir, { dim: 8, levels: 2, codebookSize: 4, seed: 3 });
  const first = await startServer(['--data-dir', dataDir, '--model', modelDir]);
  try {
    await waitReady(first.url);
    const pid = first.child.pid!;
    const second = await startServer(['--data-dir', dataDir, '--model', modelDir]);
    assert.equal(await exitedAndRead(second.child), 1, second.output());
    assert.match(second.output(), new RegExp(`^sidx serve: data directory .* is in use by sidx serve \\(pid ${pid}\\).*\\[SIDX_ERR_DATA_DIR_LOCKED\\]$`, 'm'));
    assert.doesNotMatch(second.output(), /"stack"/, 'a refusal, not a crash');
    await writeNpy(join(tmp.dir, 'items.npy'), randomMatrix(4, 8, 1), [4, 8]);
    const index = await runCli(t, ['index', '--data-dir', dataDir, '--model', modelDir, '--input', join(tmp.dir, 'items.npy')]);
    assert.equal(index.code, 1, index.stderr);
    assert.match(index.stderr, new RegExp(`in use by sidx serve \\(pid ${pid}\\).*SIDX_ERR_DATA_DIR_LOCKED`));
    assert.equal((await fetch(`${first.url}/readyz`)).status, 200, 'the first server is untouched');
  } finally {
    first.child.kill('SIGKILL');
    await exited(first.child);
  }
  assert.ok(existsSync(join(dataDir, 'sidx.lock')), 'kill -9 left the lock behind');
  const again = await startServer(['--data-dir', dataDir, '--model', modelDir]);
  await waitReady(again.url);
  again.child.kill('SIGTERM');
  assert.equal(await exited(again.child), 0, again.output());
  const killed = first.child.pid!;
  assert.match(again.output(), new RegExp(`sidx serve \\(pid ${killed}\\) ended without releasing it \\(kill -9, a crash\\): lock taken over`), 'the start says it took over');
  assert.equal(existsSync(join(dataDir, 'sidx.lock')), false, 'a clean stop removes the lock');
});
