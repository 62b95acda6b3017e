import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { keySecret } from '../../src/store/api-keys.ts';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { tempDir } from '../helpers/paths.ts';

async function run(t: TestContext, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = t.mock.method(console, 'log', (...a: unknown[]) => void out.push(a.join(' ')));
  const error = t.mock.method(console, 'error', (...a: unknown[]) => void err.push(a.join(' ')));
  try {
    return { code: await main(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}

test('sidx keys create | list | revoke', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const dataDir = join(tmp.dir, 'data');
  const created = await run(t, ['keys', 'create', '--name', 'loader', '--scope', 'admin', '--data-dir', dataDir]);
  assert.equal(created.code, 0, created.err);
  const key = created.out.trim();
  assert.match(key, /^sidx_[0-9a-f]{12}_/);
  const id = key.split('_')[1]!;
  assert.match(created.err, new RegExp(`created key ${id} \\(loader, scope admin\\)`));

  const listed = await run(t, ['keys', 'list', '--data-dir', dataDir, '--json']);
  assert.deepEqual(JSON.parse(listed.out).map((k: { id: string; scope: string }) => [k.id, k.scope]), [[id, 'admin']]);
  assert.ok(!listed.out.includes(keySecret(key)!), 'list never shows the secret');

  const cp = ControlPlane.open(join(dataDir, 'control.sqlite'));
  assert.equal(cp.keys.verify(key).ok, true);
  assert.equal((await run(t, ['keys', 'revoke', id, '--data-dir', dataDir])).code, 0);
  assert.deepEqual(cp.keys.verify(key), { ok: false, reason: 'revoked' });
  cp.close();
  assert.equal((await run(t, ['keys', 'revoke', 'nope', '--data-dir', dataDir])).code, 1);
  assert.equal((await run(t, ['keys', 'create', '--data-dir', dataDir])).code, 2, '--name is required');
  assert.equal((await run(t, ['keys', 'create', '--name', 'x', '--scope', 'root', '--data-dir', dataDir])).code, 2);
  assert.equal((await run(t, ['keys', 'frobnicate'])).code, 2);
});

test('sidx keys list and revoke refuse a data directory sidx never used, creating nothing; create makes a new one', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const missing = join(tmp.dir, 'missing');
  for (const argv of [['list'], ['revoke', 'abc']]) {
    const refused = await run(t, ['keys', ...argv, '--data-dir', missing]);
    assert.equal(refused.code, 1, argv.join(' '));
    assert.equal(refused.err, `sidx keys: data directory ${missing} does not exist; check --data-dir (or SIDX__STORAGE__DATA_DIR) [SIDX_ERR_CONFIG]`);
    assert.equal(refused.out, '');
    assert.equal(existsSync(missing), false, `${argv.join(' ')} created nothing`);
  }
  const list = await run(t, ['keys', 'list', '--data-dir', tmp.dir]);
  assert.equal(list.code, 1);
  assert.match(list.err, /holds no control plane \(control\.sqlite\).*\[SIDX_ERR_CONFIG\]$/);
  assert.equal(existsSync(join(tmp.dir, 'control.sqlite')), false);

  assert.equal((await run(t, ['keys', 'create', '--name', 'first', '--data-dir', missing])).code, 0);
  const listed = await run(t, ['keys', 'list', '--data-dir', missing, '--json']);
  assert.deepEqual(JSON.parse(listed.out).map((k: { name: string }) => k.name), ['first']);
});
