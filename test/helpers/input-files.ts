/** Input files for the readers' tests: written into a temporary directory, and the errors that must name them. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SidxError } from '../../src/errors.ts';
import { tempDir } from './paths.ts';

/** Writes `files` (name -> content) into a fresh temporary directory, runs `fn` with a name -> path map, removes it. */
export async function withFiles(files: Record<string, Uint8Array | string>, fn: (p: (name: string) => string) => Promise<void>) {
  const { dir, cleanup } = tempDir();
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    await fn((name) => join(dir, name));
  } finally {
    cleanup();
  }
}

/** Asserts that `p` rejects with SIDX_ERR_INVALID_INPUT, a message starting with `file` and matching `pattern`. */
export async function rejectsNaming(p: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SidxError, String(err));
    assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
    assert.ok(err.message.startsWith(file), `message names ${file}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}
