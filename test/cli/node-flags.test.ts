/**
 * `sidx serve` gets the same V8 flags (src/node-flags.ts) however it is started: bin/sidx.js's shebang, `npm
 * start`, the Dockerfile's images and `sidx bench`'s server; and node takes them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SERVE_NODE_FLAGS } from '../../src/node-flags.ts';
import { SIDX_BIN, SIDX_SERVE } from '../../src/bench/server.ts';

const repo = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

test('every way of starting sidx serve passes SERVE_NODE_FLAGS to node', () => {
  assert.ok(SERVE_NODE_FLAGS.length > 0);
  const flags = SERVE_NODE_FLAGS.join(' ');
  assert.equal(repo('bin/sidx.js').split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
  assert.equal((JSON.parse(repo('package.json')) as { scripts: { start: string } }).scripts.start, `node ${flags} bin/sidx.js serve`);
  const cmds = repo('Dockerfile').split('\n').filter((line) => line.startsWith('CMD ') && line.includes('bin/sidx.js'));
  assert.equal(cmds.length, 2, 'both images start sidx serve');
  for (const cmd of cmds) assert.deepEqual(JSON.parse(cmd.slice(4)), ['node', ...SERVE_NODE_FLAGS, 'bin/sidx.js', 'serve']);
  assert.deepEqual(SIDX_SERVE, [...SERVE_NODE_FLAGS, SIDX_BIN, 'serve']);
});

test('node starts with the flags (it refuses an unknown or NODE_OPTIONS-only V8 flag with exit code 9)', () => {
  assert.equal(execFileSync(process.execPath, [...SERVE_NODE_FLAGS, '-e', 'console.log("ok")'], { encoding: 'utf8' }).trim(), 'ok');
  assert.match(SERVE_NODE_FLAGS.join(' '), /--initial-old-space-size=128\b/);
});

test('node accepts the flags: the young generation grows to the semi-space size they set', () => {
  const semi = Number(/--max-semi-space-size=(\d+)/.exec(SERVE_NODE_FLAGS.join(' '))?.[1]);
  assert.ok(semi > 0);
  // Keeps a share of what it allocates alive, as an upsert batch does, so the young generation grows to its limit.
  const script = `const keep = []; for (let i = 0; i < 4e5; i++) { keep.push({ i, s: 'x'.repeat(64) + i }); if (keep.length > 2e5) keep.length = 0; }
    console.log(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size)`;
  const newSpace = (flags: readonly string[]) => Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }).trim());
  const withFlags = newSpace(SERVE_NODE_FLAGS);
  assert.ok(withFlags > newSpace([]), `new space ${withFlags} bytes with the flags`);
  assert.ok(withFlags <= 2 * semi * 2 ** 20);
});
