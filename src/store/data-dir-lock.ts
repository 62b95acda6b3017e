/**
 * One writer per data directory: `sidx serve` and `sidx index` hold `<dataDir>/sidx.lock` (created atomically
 * with link(2), holding `pid command`) while the service is open. A second one is refused with SIDX_ERR_DATA_DIR_LOCKED naming
 * the holder's pid: otherwise each process would keep its own FAISS index and see only its own new vectors.
 * A lock left by a process that is gone (kill -9, a crash) is taken over. `sidx keys` writes only the SQLite
 * control plane, which SQLite locks itself, so it runs beside a server without the lock.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SidxError } from '../errors.ts';

export const LOCK_FILE = 'sidx.lock';

/**
 * Locks this process holds. A lock naming this process's pid but not held here was left by an earlier process
 * that had the same pid (a container's sidx restarts as the same pid): it is stale.
 */
const held = new Set<string>();

/**
 * True while a process with this pid exists (EPERM: it exists, owned by another user) and is not a zombie: a holder
 * killed with -9 stays one until its parent reaps it, and kill(pid, 0) still finds it.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = processState(pid);
  return state !== 'Z' && state !== 'X';
}

/** The state letter in /proc/<pid>/stat (R, S, D, Z zombie, X dead, ...); undefined where it cannot be read (not Linux). */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses, so the state follows the last ") ".
    return stat.slice(stat.lastIndexOf(') ') + 2).charAt(0) || undefined;
  } catch {
    return undefined;
  }
}

export class DataDirLock {
  readonly path: string;
  /** The holder whose stale lock this one took over (a process that ended without releasing it: kill -9, a crash). */
  readonly tookOverFrom: { pid: number; command: string } | null;
  #released = false;

  private constructor(path: string, tookOverFrom: { pid: number; command: string } | null) {
    this.path = path;
    this.tookOverFrom = tookOverFrom;
  }

  /** Takes the lock of `dataDir` (created if missing) for `command`, or throws SIDX_ERR_DATA_DIR_LOCKED. */
  static acquire(dataDir: string, command: string): DataDirLock {
    const path = join(resolve(dataDir), LOCK_FILE);
    const mine = `${path}.${process.pid}`;
    try {
      mkdirSync(dataDir, { recursive: true });
      // Written whole, then linked into place: link(2) fails if the lock exists, and no reader sees half a file.
      writeFileSync(mine, `${process.pid} ${command}\n`);
    } catch (err) {
      throw unusableDir(dataDir, err);
    }
    let stale: { pid: number; command: string } | null = null;
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          linkSync(mine, path);
          held.add(path);
          return new DataDirLock(path, stale);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(path, err);
        }
        const text = readText(path);
        const holder = text === null ? null : parseHolder(text);
        if (holder && (holder.pid === process.pid ? held.has(path) : alive(holder.pid))) {
          throw new SidxError('SIDX_ERR_DATA_DIR_LOCKED', `data directory ${dataDir} is in use by ${holder.command} (pid ${holder.pid}); `
            + `stop it first (if pid ${holder.pid} is not sidx, remove ${path})`, { field: 'storage.dataDir' });
        }
        if (text !== null) {
          stale = holder;
          takeOver(path, text);
        }
      }
      throw new SidxError('SIDX_ERR_DATA_DIR_LOCKED', `data directory ${dataDir}: could not take ${path} (other starts race for it)`, { field: 'storage.dataDir' });
    } finally {
      rmSync(mine, { force: true });
    }
  }

  /** Removes the lock file (once). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(this.path);
    try {
      unlinkSync(this.path);
    } catch {
      // already gone: nothing to release
    }
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function parseHolder(text: string): { pid: number; command: string } | null {
  const m = /^(\d+) (.*)\n/.exec(text);
  return m ? { pid: Number(m[1]), command: m[2]! } : null;
}

/**
 * Removes a lock whose holder is gone (its content `stale`). Moved aside first: if another start replaced it in
 * between, that fresh lock is linked back (unless yet another exists) and the caller's next look sees it.
 */
function takeOver(path: string, stale: string): void {
  const aside = `${path}.stale.${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw lockError(path, err);
  }
  try {
    if (readText(aside) !== stale) {
      try {
        linkSync(aside, path);
      } catch {
        // a third start holds it now
      }
    }
  } finally {
    rmSync(aside, { force: true });
  }
}

/** A data directory this process cannot create or write in: a configuration problem, said as one. */
function unusableDir(dataDir: string, err: unknown): SidxError {
  const code = (err as NodeJS.ErrnoException).code;
  const who = typeof process.getuid === 'function' ? `uid ${process.getuid()}` : 'this user';
  const why = code === 'EACCES' || code === 'EPERM' ? `not writable by ${who}`
    : code === 'EROFS' ? 'on a read-only file system'
      : code === 'ENOTDIR' || code === 'EEXIST' ? 'not a directory (a file is in the way)'
        : code === 'ENOSPC' ? 'on a full disk' : (err as Error).message;
  return new SidxError('SIDX_ERR_CONFIG', `data directory ${dataDir} cannot be used: ${why}; check --data-dir (or SIDX__STORAGE__DATA_DIR) and its owner`,
    { field: 'storage.dataDir', cause: err });
}

function lockError(path: string, err: unknown): SidxError {
  return new SidxError('SIDX_ERR_STORE', `cannot take the lock ${path}: ${(err as Error).message}`, { cause: err });
}
