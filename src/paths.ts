/**
 * Files of the sidx checkout that the code opens at run time (the addon, worker scripts, migrations), resolved from
 * the repository root. This module is one level below the root both as src/paths.ts and inlined in the bundle
 * dist/sidx.mjs (scripts/build.mjs, run by bin/sidx.js when it is up to date), so these paths hold in both layouts;
 * a path relative to each module's own URL would not hold in the bundle.
 */
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../', import.meta.url);

/** URL of `relative` (a path from the repository root). */
export function repoUrl(relative: string): URL {
  return new URL(relative, ROOT);
}

/** File system path of `relative` (a path from the repository root). */
export function repoPath(relative: string): string {
  return fileURLToPath(repoUrl(relative));
}
