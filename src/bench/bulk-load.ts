/**
 * `sidx index` bulk-load speed for `sidx bench`: the catalog written as a .npy, then the CLI as a child process on a
 * fresh data directory (the same model, the CLI's default batch size, which its last line names). Its own items/s
 * (indexing, from that line) and the process's wall time (node start, read, open, index, close) are both reported.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeNpy } from '../io/npy.ts';
import { REPO_ROOT, SIDX_BIN } from './server.ts';

const run = promisify(execFile);

export interface BulkLoadResult {
  items: number;
  batch: number;
  /** As `sidx index` reports it: items over the time from the first batch to the last commit. */
  itemsPerSecond: number;
  /** The whole process, spawn to exit. */
  wallSeconds: number;
}

export async function benchBulkLoad(items: Float32Array, n: number, dim: number, modelDir: string, workDir: string):
  Promise<BulkLoadResult> {
  const input = join(workDir, `catalog-${n}.npy`);
  const dataDir = join(workDir, `bulk-index-${n}`);
  rmSync(dataDir, { recursive: true, force: true });
  await writeNpy(input, items.subarray(0, n * dim), [n, dim]);
  try {
    const t0 = performance.now();
    const { stdout, stderr } = await run(process.execPath, [SIDX_BIN, 'index', '--input', input, '--model', modelDir, '--data-dir', dataDir], { cwd: REPO_ROOT, maxBuffer: 64 << 20, env: { ...process.env, SIDX__STORAGE__DATA_DIR: dataDir } });
    const wallSeconds = (performance.now() - t0) / 1000;
    const m = /indexed (\d+) items .*\((\d+) items\/s, batches of (\d+)\)/.exec(`${stdout}\n${stderr}`);
    if (!m || Number(m[1]) !== n) throw new Error(`sidx index did not report ${n} items indexed:\n${stdout}\n${stderr}`);
    return { items: n, batch: Number(m[3]), itemsPerSecond: Number(m[2]), wallSeconds };
  } finally {
    rmSync(input, { force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}
