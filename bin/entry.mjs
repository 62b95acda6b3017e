// Which file bin/sidx.js runs: the bundle dist/sidx.mjs (scripts/build.mjs) while it is newer than every file under
// src/, else the TypeScript sources through tsx (an edit to src/ is never shadowed by an older bundle).
// SIDX_FROM_SOURCE=1 always takes the sources.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time (ms) of the files under `dir`, recursively; 0 for none. */
export function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

/** 'bundle' when `root`/dist/sidx.mjs exists and is newer than everything under `root`/src, else 'source'. */
export function chooseEntry(root, env = process.env) {
  if (env.SIDX_FROM_SOURCE === '1') return 'source';
  let bundled;
  try {
    bundled = statSync(join(root, 'dist', 'sidx.mjs')).mtimeMs;
  } catch {
    return 'source';
  }
  return bundled > newestMtime(join(root, 'src')) ? 'bundle' : 'source';
}
