import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { isSidxError, type ErrorCode } from '../../src/errors.ts';
import { ControlPlane, MIGRATIONS_DIR, type RegisterModelInput } from '../../src/store/control-plane.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function model(id: string, sha256 = SHA_A): RegisterModelInput {
  return { id, method: 'rqkmeans', inputDim: 512, codebookSizes: [8192, 8192, 8192], path: `/models/${id}`, sha256, metrics: { collisionRate: 0.01 } };
}

function code(c: ErrorCode): (e: unknown) => boolean {
  return (e) => isSidxError(e) && e.code === c;
}

describe('ControlPlane', () => {
  let dir: string;
  let cleanup: () => void;
  let cp: ControlPlane | undefined;

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('sidx-cp-'));
  });
  afterEach(() => {
    cp?.close();
    cp = undefined;
    cleanup();
  });

  test('MIGRATIONS_DIR is the repository migrations/ directory', () => {
    assert.equal(MIGRATIONS_DIR.replace(/\/$/, ''), join(repoRoot, 'migrations'));
    assert.ok(existsSync(join(MIGRATIONS_DIR, '0001_init.sql')));
  });

  test('migrations are applied once, recorded, and not reapplied on reopen', () => {
    const db = join(dir, 'control.sqlite');
    cp = ControlPlane.open(db, MIGRATIONS_DIR);
    const first = cp.appliedMigrations();
    assert.deepEqual(first.map((m) => [m.version, m.name]), [[1, 'init'], [2, 'api_keys'], [3, 'reindex_jobs']]);
    assert.match(first[0].appliedAt, /^\d{4}-\d\d-\d\dT/);
    cp.registerModel(model('m1'));
    cp.close();
    cp = ControlPlane.open(db, MIGRATIONS_DIR);
    assert.deepEqual(cp.appliedMigrations(), first);
    assert.equal(cp.getModel('m1')?.version, 1);
    const raw = new Database(db, { readonly: true });
    assert.equal((raw.pragma('journal_mode', { simple: true }) as string).toLowerCase(), 'wal');
    raw.close();
  });

  test('new migration files are applied in numeric order on the next open', () => {
    const migrations = join(dir, 'migrations');
    mkdirSync(migrations);
    copyFileSync(join(MIGRATIONS_DIR, '0001_init.sql'), join(migrations, '0001_init.sql'));
    const db = join(dir, 'control.sqlite');
    cp = ControlPlane.open(db, migrations);
    cp.close();
    writeFileSync(join(migrations, '0010_later.sql'), 'INSERT INTO t (v) VALUES (2);');
    writeFileSync(join(migrations, '0002_table.sql'), 'CREATE TABLE t (v INTEGER);\nINSERT INTO t (v) VALUES (1);');
    writeFileSync(join(migrations, 'README.md'), 'not a migration');
    cp = ControlPlane.open(db, migrations);
    assert.deepEqual(cp.appliedMigrations().map((m) => m.version), [1, 2, 10]);
    cp.close();
    cp = undefined;
    const raw = new Database(db, { readonly: true });
    assert.deepEqual(raw.prepare('SELECT v FROM t ORDER BY rowid').all(), [{ v: 1 }, { v: 2 }]);
    raw.close();
  });

  test('a broken migration fails naming its file and leaves earlier ones applied', () => {
    const migrations = join(dir, 'migrations');
    mkdirSync(migrations);
    copyFileSync(join(MIGRATIONS_DIR, '0001_init.sql'), join(migrations, '0001_init.sql'));
    writeFileSync(join(migrations, '0002_ok.sql'), 'CREATE TABLE ok (v INTEGER);');
    writeFileSync(join(migrations, '0003_broken.sql'), 'CREATE TABLE half (v INTEGER);\nCREATE TABLEX nope;');
    const db = join(dir, 'control.sqlite');
    assert.throws(() => ControlPlane.open(db, migrations), (e: unknown) => code('SIDX_ERR_STORE')(e) && /0003_broken\.sql/.test((e as Error).message));
    const raw = new Database(db, { readonly: true });
    assert.deepEqual(raw.prepare('SELECT version FROM schema_migrations ORDER BY version').all(), [{ version: 1 }, { version: 2 }]);
    // The failed file's own statements were rolled back with it.
    assert.deepEqual(raw.prepare("SELECT name FROM sqlite_master WHERE name IN ('ok', 'half')").all(), [{ name: 'ok' }]);
    raw.close();
  });

  test('badly named or duplicate-numbered migration files are rejected', () => {
    const migrations = join(dir, 'migrations');
    mkdirSync(migrations);
    writeFileSync(join(migrations, '1_init.sql'), 'SELECT 1;');
    assert.throws(() => ControlPlane.open(join(dir, 'a.sqlite'), migrations), (e: unknown) => code('SIDX_ERR_STORE')(e) && /1_init\.sql/.test((e as Error).message));
    const m2 = join(dir, 'm2');
    mkdirSync(m2);
    writeFileSync(join(m2, '0001_a.sql'), 'SELECT 1;');
    writeFileSync(join(m2, '0001_b.sql'), 'SELECT 1;');
    assert.throws(() => ControlPlane.open(join(dir, 'b.sqlite'), m2), /share number 1/);
  });

  test('registerModel assigns versions and is idempotent for the same id and sha256', () => {
    cp = ControlPlane.open(join(dir, 'control.sqlite'), MIGRATIONS_DIR);
    const a = cp.registerModel(model('m1'));
    assert.equal(a.version, 1);
    assert.equal(a.levels, 3);
    assert.deepEqual(a.codebookSizes, [8192, 8192, 8192]);
    assert.deepEqual(a.metrics, { collisionRate: 0.01 });
    assert.equal(a.status, 'registered');
    assert.deepEqual(cp.registerModel(model('m1')), a);
    const b = cp.registerModel({ ...model('m2', SHA_B), method: 'rqvae', codebookSizes: [256, 256, 256, 256] });
    assert.equal(b.version, 2);
    assert.equal(b.levels, 4);
    assert.throws(() => cp!.registerModel(model('m1', SHA_B)), (e: unknown) => code('SIDX_ERR_INVALID_INPUT')(e) && /already registered/.test((e as Error).message));
    assert.throws(() => cp!.registerModel({ ...model('m3'), method: 'pq' as 'rqvae' }), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cp!.registerModel({ ...model('m3'), codebookSizes: [70000] }), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cp!.registerModel({ ...model('m3'), sha256: 'xyz' }), code('SIDX_ERR_INVALID_INPUT'));
    assert.throws(() => cp!.registerModel({ ...model('m3'), inputDim: 0 }), code('SIDX_ERR_INVALID_INPUT'));
    assert.deepEqual(cp.listModels().map((m) => m.id), ['m1', 'm2']);
    assert.equal(cp.getModel('nope'), undefined);
    assert.equal(cp.modelByVersion(2)?.id, 'm2');
    assert.equal(cp.modelByVersion(3), undefined);
  });

  test('one active model at a time', () => {
    cp = ControlPlane.open(join(dir, 'control.sqlite'), MIGRATIONS_DIR);
    cp.registerModel(model('m1'));
    cp.registerModel(model('m2', SHA_B));
    assert.equal(cp.activeModel(), undefined);
    assert.equal(cp.activateModel('m1').status, 'active');
    assert.equal(cp.activateModel('m1').status, 'active'); // idempotent
    cp.activateModel('m2');
    assert.equal(cp.activeModel()?.id, 'm2');
    assert.equal(cp.getModel('m1')?.status, 'retired');
    assert.throws(() => cp!.activateModel('nope'), code('SIDX_ERR_UNKNOWN_MODEL'));
    assert.equal(cp.activeModel()?.id, 'm2');
    cp.activateModel('m1'); // roll back
    assert.deepEqual(cp.listModels().map((m) => [m.id, m.status]), [['m1', 'active'], ['m2', 'retired']]);
  });

  test('jobs: create, progress, finish', () => {
    cp = ControlPlane.open(join(dir, 'control.sqlite'), MIGRATIONS_DIR);
    cp.registerModel(model('m1'));
    const j = cp.createJob({ id: 'job-1', kind: 'reindex', modelId: 'm1', total: 100 });
    assert.equal(j.status, 'queued');
    assert.equal(j.processed, 0);
    assert.equal(cp.updateJob('job-1', { status: 'running', processed: 40 }).processed, 40);
    const done = cp.updateJob('job-1', { status: 'failed', error: 'boom' });
    assert.deepEqual([done.status, done.processed, done.total, done.error], ['failed', 40, 100, 'boom']);
    assert.throws(() => cp!.updateJob('nope', { processed: 1 }), code('SIDX_ERR_NOT_FOUND'));
    assert.throws(() => cp!.createJob({ id: 'job-2', kind: 'reindex', modelId: 'unknown' }), code('SIDX_ERR_UNKNOWN_MODEL'));
    assert.throws(() => cp!.createJob({ id: 'job-1', kind: 'reindex' }), code('SIDX_ERR_STORE'));
    assert.equal(cp.getJob('job-2'), undefined);
  });
});
