/** The data directory lock (issue 14): one sidx process per data directory; a lock left by a dead process is taken over. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataDirLock, LOCK_FILE, processState } from '../../src/store/data-dir-lock.ts';
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
  const dead = deadPid();
  for (const content of [`${dead} sidx serve\n`, '', 'garbage', `${process.pid} sidx serve\n`]) {
    writeFileSync(join(tmp.dir, LOCK_FILE), content);
    const lock = DataDirLock.acquire(tmp.dir, 'sidx serve');
    assert.equal(readFileSync(join(tmp.dir, LOCK_FILE), 'utf8'), `${process.pid} sidx serve\n`, JSON.stringify(content));
    // Which holder it took over from, for the start's log line (an unparsable lock names none).
    const from = content.startsWith(String(dead)) ? { pid: dead, command: 'sidx serve' } : content.startsWith(String(process.pid)) ? { pid: process.pid, command: 'sidx serve' } : null;
    assert.deepEqual(lock.tookOverFrom, from, JSON.stringify(content));
    lock.release();
  }
  const fresh = DataDirLock.acquire(tmp.dir, 'sidx serve');
  assert.equal(fresh.tookOverFrom, null, 'a free directory takes over from nobody');
  fresh.release();
});

test('a data directory that cannot be created is a configuration error naming it and why', () => {
  const file = join(tmp.dir, 'a-file');
  writeFileSync(file, 'x');
  for (const dir of [file, join(file, 'data')]) {
    assert.throws(() => DataDirLock.acquire(dir, 'sidx serve'), (err: any) => {
      assert.equal(err.code, 'SIDX_ERR_CONFIG');
      assert.equal(err.field, 'storage.dataDir');
      assert.match(err.message, new RegExp(`data directory ${dir.replaceAll('/', '\\/')} cannot be used: not a directory \\(a file is in the way\\)`));
      return true;
    });
  }
});

test('a lock whose holder is a zombie (exited, not yet reaped by its parent) is taken over', async (t) => {
  // sh forks a child that exits once sh has become sleep (exec), which never reaps it: a zombie until sleep is killed.
  const script = 'p=$$; (until read c < /proc/$p/comm && [ "$c" = sleep ]; do sleep 0.01; done) & echo $!; exec sleep 1000';
  const parent = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => parent.kill('SIGKILL'));
  const [line] = await once(parent.stdout!, 'data') as [Buffer];
  const zombie = Number(line.toString().trim());
  for (let state = processState(zombie); state !== 'Z'; state = processState(zombie)) {
    assert.notEqual(state, undefined, `pid ${zombie} is gone (reaped) before it was seen a zombie`);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.doesNotThrow(() => process.kill(zombie, 0), 'kill(pid, 0) still finds a zombie');

  writeFileSync(join(tmp.dir, LOCK_FILE), `${zombie} sidx serve\n`);
  const lock = DataDirLock.acquire(tmp.dir, 'sidx serve');
  assert.equal(readFileSync(join(tmp.dir, LOCK_FILE), 'utf8'), `${process.pid} sidx serve\n`);
  lock.release();
});

test('processState reads the state after the command name, whatever the name holds', async (t) => {
  // A live process named like a zombie's stat line: the state is after the last ") ", not the first.
  const named = spawn(process.execPath, ['-e', 'process.title = "x) Z (y"; console.log("titled"); setInterval(() => {}, 1000)'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => named.kill('SIGKILL'));
  await once(named.stdout!, 'data');
  assert.match(readFileSync(`/proc/${named.pid}/stat`, 'utf8'), /^\d+ \(x\) Z \(y\) /);
  assert.match(processState(named.pid!) ?? '', /^[RS]$/);
  assert.equal(processState(deadPid()), undefined, 'a pid with no process');
});
