#!/usr/bin/env -S node --max-semi-space-size=32 --initial-old-space-size=128
// Entry point of the `sidx` command: the bundle dist/sidx.mjs when it is up to date (`npm run build`), else the
// TypeScript sources as they are, through tsx (bin/entry.mjs decides).
import { fileURLToPath } from 'node:url';
import { chooseEntry } from './entry.mjs';

let main;
if (chooseEntry(fileURLToPath(new URL('../', import.meta.url))) === 'bundle') {
  ({ main } = await import('../dist/sidx.mjs'));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
// A reader that stops early (`sidx openapi | head`) closes the pipe. The command still finishes its work (a file it
// writes after printing is whole) without a stack trace, and exits as one killed by SIGPIPE would (128 + 13), so that
// a pipeline under `set -o pipefail` sees the output was not all taken (a key printed once by `sidx keys create`).
// (`sidx serve` writes its log through its own destination, src/cli/log-destination.ts, which says so on stderr.)
let stdoutClosed = false;
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
  stdoutClosed = true;
});
// The pipe's error may come after main returns (the last write still in flight): decided at exit.
process.on('exit', () => {
  if (stdoutClosed && !process.exitCode) process.exitCode = 141;
});
process.exitCode = await main(process.argv.slice(2));
