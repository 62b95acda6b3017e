import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Catalog } from '../../src/store/catalog.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';

const BATCH = 10;

test('a batch whose upsert returned survives kill -9; no batch is half applied', async () => {
  const { dir, cleanup } = tempDir('sidx-kill-');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/store/fixtures/catalog-writer.ts'), dir], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let reported = 0n;
    let pending = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const m = /^committed (\d+)$/.exec(line);
        if (m) reported = BigInt(m[1]);
        // Kill while the writer is busy committing more batches.
        if (reported >= 40n * BigInt(BATCH) && child.exitCode === null && !child.killed) child.kill('SIGKILL');
      }
    });
    const signal = await exited;
    assert.equal(signal, 'SIGKILL', `writer did not get killed: ${stderr}`);
    assert.ok(reported >= 400n);

    const cat = Catalog.open(dir);
    try {
      assert.ok(cat.lastSeq >= reported, `lastSeq ${cat.lastSeq} < reported ${reported}`);
      assert.equal(cat.lastSeq % BigInt(BATCH), 0n);
      assert.equal(BigInt(cat.count), cat.lastSeq);
      const lastBatch = Number(reported / BigInt(BATCH)) - 1;
      for (let i = 0; i < BATCH; i++) {
        const rec = cat.get(`b${lastBatch}-i${i}`);
        assert.ok(rec, `b${lastBatch}-i${i} missing`);
        assert.deepEqual(rec.vector, Float32Array.of(lastBatch, i, lastBatch * i, -1));
      }
      const batches = Number(cat.lastSeq) / BATCH;
      let sameSid = 0;
      for (let b = 0; b < batches; b++) if (b % 256 === lastBatch % 256) sameSid++;
      assert.equal(cat.exact(1, Int32Array.of(lastBatch % 256, 3, 7), 1000).length, sameSid);
    } finally {
      await cat.close();
    }
  } finally {
    cleanup();
  }
});
