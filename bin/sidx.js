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
// A reader that stops early (`sidx openapi | head`) closes the pipe: what it wanted was written, so end quietly, as Unix
// tools do. Not `sidx serve`, whose log goes to stdout: losing it must not pass unnoticed.
if (process.argv[2] !== 'serve') {
  process.stdout.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
process.exitCode = await main(process.argv.slice(2));
