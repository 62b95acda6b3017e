// bin/sidx.js runs the bundle dist/sidx.mjs (scripts/build.mjs) only while it is newer than everything under src/,
// and the bundle answers as the sources do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chooseEntry, newestMtime } from '../../bin/entry.mjs';
import { repoRoot, tempDir } from '../helpers/paths.ts';

const run = promisify(execFile);

function touch(path: string, seconds: number): void {
  writeFileSync(path, '');
  utimesSync(path, seconds, seconds);
}

test('chooseEntry: the bundle only while it is newer than every file under src/', () => {
  const { dir, cleanup } = tempDir('sidx-entry-');
  try {
    mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
    touch(join(dir, 'src', 'cli', 'main.ts'), 1_000);
    assert.equal(chooseEntry(dir, {}), 'source', 'no dist/: the sources');
    mkdirSync(join(dir, 'dist'));
    touch(join(dir, 'dist', 'sidx.mjs'), 2_000);
    assert.equal(chooseEntry(dir, {}), 'bundle');
    assert.equal(chooseEntry(dir, { SIDX_FROM_SOURCE: '1' }), 'source', 'SIDX_FROM_SOURCE=1 forces the sources');
    mkdirSync(join(dir, 'src', 'deep', 'er'), { recursive: true });
    touch(join(dir, 'src', 'deep', 'er', 'edited.ts'), 3_000);
    assert.equal(newestMtime(join(dir, 'src')), 3_000_000, 'found in a nested directory');
    assert.equal(chooseEntry(dir, {}), 'source', 'a source file edited after the build wins over the bundle');
    touch(join(dir, 'dist', 'sidx.mjs'), 4_000);
    assert.equal(chooseEntry(dir, {}), 'bundle', 'rebuilt');
  } finally {
    cleanup();
  }
});

test('the checkout\'s bundle writes the same OpenAPI document as the sources', {
  skip: chooseEntry(repoRoot, {}) !== 'bundle' && 'no up-to-date bundle here (npm run build)',
}, async () => {
  const { dir, cleanup } = tempDir('sidx-entry-');
  try {
    const bin = join(repoRoot, 'bin', 'sidx.js');
    await run(process.execPath, [bin, 'openapi', '--out', join(dir, 'bundle.json')], { env: { ...process.env, SIDX_FROM_SOURCE: '' } });
    await run(process.execPath, [bin, 'openapi', '--out', join(dir, 'source.json')], { env: { ...process.env, SIDX_FROM_SOURCE: '1' } });
    const bundled = readFileSync(join(dir, 'bundle.json'), 'utf8');
    assert.ok(bundled.length > 1000);
    assert.equal(bundled, readFileSync(join(dir, 'source.json'), 'utf8'));
  } finally {
    cleanup();
  }
});

/** `sidx <argv>` as a child whose stdout's read end is closed at once, as `head` closes it once it has its bytes. */
async function withStdoutClosed(argv: string[]): Promise<{ code: number | null; stderr: string }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'sidx.js'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stderr };
}

test('a reader that closes the pipe early: no stack trace, the work finished, the status of a SIGPIPE (141)', async () => {
  const openapi = await withStdoutClosed(['openapi']);
  assert.equal(openapi.code, 141, openapi.stderr);
  assert.doesNotMatch(openapi.stderr, /EPIPE|Unhandled|at /);

  // A file written after the table was printed is still written whole.
  const { dir, cleanup } = tempDir('sidx-epipe-');
  try {
    const input = join(dir, 'rows.npy');
    const { writeNpy } = await import('../../src/io/npy.ts');
    await writeNpy(input, Float32Array.from({ length: 64 * 512 }, (_, i) => Math.sin(i)), [64, 512]);
    const json = join(dir, 'metrics.json');
    const metrics = await withStdoutClosed(['metrics', '--model', join(repoRoot, 'models', 'rqkmeans-3x256'), '--input', input, '--json', json]);
    assert.equal(metrics.code, 141, metrics.stderr);
    const rows = JSON.parse(readFileSync(json, 'utf8')) as Array<{ metrics: unknown }>;
    assert.equal(rows.length, 1);
    assert.ok(rows[0]!.metrics);
  } finally {
    cleanup();
  }
});
