import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** The shared real data sets (never copied into the repo). Override with SIDX_SHARED_DATA. */
export const sharedData = resolve(process.env.SIDX_SHARED_DATA ?? join(repoRoot, '..', 'shared', 'data'));

export function sharedFile(...parts: string[]): string {
  return join(sharedData, ...parts);
}

/** For `test(name, { skip: skipWithoutShared('scientific/text_emb.npy') }, fn)`: a reason string, or false. */
export function skipWithoutShared(...parts: string[]): string | false {
  const p = sharedFile(...parts);
  return existsSync(p) ? false : `shared data not found: ${p}`;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'sidx-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
