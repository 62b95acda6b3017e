/** The data directory lock (issue 14): one sidx process per data directory; a lock left by a dead process is taken over. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataDirLock, LOCK_FILE } from '../../src/store/data-dir-lock.ts';
import { tempDir } from '../helpers/paths.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

test('a second holder is refused naming the first one\'s pid and command; release frees the directory', () => {
  const first = DataDirLock.acquire(tmp.dir, 'sidx serve');
  assert.equal(readFileSync(join(tmp.dir, LOCK_FILE), 'utf8'), `${process.pid} sidx serve\n`);
  assert.throws(() => DataDirLock.acquire(tmp.dir, 'sidx index'), (err: any) => {
    assert.equal(err.code, 'SIDX_ERR_DATA_DIR_LOCKED');
    assert.match(err.message, new RegExp(`in use by sidx serve \\(pid ${process.pid}\\)`));
    return true;
  });
  assert.equal(readFileSync(join(tmp.dir, LOCK_FILE), 'utf8'), `${process.pid} sidx serve\n`, 'the refused one left the lock alone');
  first.release();
  assert.equal(existsSync(join(tmp.dir, LOCK_FILE)), false);
  DataDirLock.acquire(tmp.dir, 'sidx index').release();
});

test('a lock whose process is gone, or an unreadable one, or one with this pid left by an earlier process, is taken over', () => {
  for (const content of [`${deadPid()} sidx serve\n`, '', 'garbage', `${process.pid} sidx serve\n`]) {
    writeFileSync(join(tmp.dir, LOCK_FILE), content);
    const lock = DataDirLock.acquire(tmp.dir, 'sidx serve');
    assert.equal(readFileSync(join(tmp.dir, LOCK_FILE), 'utf8'), `${process.pid} sidx serve\n`, JSON.stringify(content));
    lock.release();
  }
});
