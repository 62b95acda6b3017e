import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { keySecret } from '../../src/store/api-keys.ts';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { tempDir } from '../helpers/paths.ts';

test('API keys: shown once, stored as SHA-256 only, verified by id + constant-time hash, revocable', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'control.sqlite');
  const cp = ControlPlane.open(db);
  try {
    const a = cp.keys.create('ci', 'write');
    const b = cp.keys.create('ops', 'admin');
    assert.match(a.key, /^sidx_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.key, b.key);
    assert.deepEqual(cp.keys.verify(a.key), { ok: true, id: a.id, scope: 'write' });
    assert.deepEqual(cp.keys.verify(b.key), { ok: true, id: b.id, scope: 'admin' });
    assert.deepEqual(cp.keys.verify(`${a.key.slice(0, -1)}${a.key.endsWith('A') ? 'B' : 'A'}`), { ok: false, reason: 'unknown' });
    assert.deepEqual(cp.keys.verify(a.key.replace(a.id, b.id)), { ok: false, reason: 'unknown' }, "another key's id with this secret");
    assert.deepEqual(cp.keys.verify('sidx_000000000000_' + 'x'.repeat(43)), { ok: false, reason: 'unknown' });
    assert.deepEqual(cp.keys.verify('Bearer x'), { ok: false, reason: 'malformed' });
    assert.throws(() => cp.keys.create('', 'write'), { code: 'SIDX_ERR_INVALID_INPUT' });
    assert.throws(() => cp.keys.create('x', 'root' as never), { code: 'SIDX_ERR_INVALID_INPUT' });

    assert.equal(cp.keys.revoke(a.id), true);
    assert.equal(cp.keys.revoke(a.key), true, 'revoking again (by the whole key) is fine');
    assert.equal(cp.keys.revoke('nope'), false);
    assert.deepEqual(cp.keys.verify(a.key), { ok: false, reason: 'revoked' });
    assert.deepEqual(cp.keys.list().map((k) => [k.name, k.scope, k.revokedAt !== null]), [['ci', 'write', true], ['ops', 'admin', false]]);

    const raw = new Database(db, { readonly: true });
    const rows = raw.prepare('SELECT * FROM api_keys').all() as Array<Record<string, string>>;
    raw.close();
    for (const row of rows) {
      for (const value of Object.values(row)) assert.ok(!String(value).includes(keySecret(a.key)!) && !String(value).includes(keySecret(b.key)!));
      assert.match(row.hash!, /^[0-9a-f]{64}$/);
    }
  } finally {
    cp.close();
    tmp.cleanup();
  }
});

test('keySecret takes the whole random part, underscores included', () => {
  const secret = 'ab_cd-ef_' + 'x'.repeat(34);
  assert.equal(keySecret(`sidx_0123456789ab_${secret}`), secret);
  assert.equal(keySecret('sidx_0123456789ab_short'), undefined);
});
