/**
 * FORGE-size encode throughput: an RQ-VAE of FORGE's shape (MLP 512-256-256-64, 3 levels x 8192 codes) built in
 * seconds with seeded weights (src/bench/vae-bundle.ts, written by the trainer's own exporter, so encoder.onnx is
 * what `sidx serve` runs), then src/bench/encode.ts on it: sidx's encoder pool (the serving path, default workers),
 * one ORT session on the calling thread, and PyTorch (bench/torch-encode.py, same weights read back from
 * encoder.onnx), the same threads everywhere, with a check that the codes agree.
 *
 *   node --import tsx bench/forge-encode.bench.ts                  # batches 1,64,1024, 2 threads
 *   node --import tsx bench/forge-encode.bench.ts --codebook-size 256 --threads 1 --json out.json
 * Options: --rows (synthetic 512-d rows timed, default 20000), --dim, --levels, --codebook-size, --hidden 256,256,
 * --latent 64, --batches, --threads, --workers (sidx pool; default one per core, at most 4, as `sidx index` runs it),
 * --seconds (per measurement), --python, --json FILE.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchEncode } from '../src/bench/encode.ts';
import { encodeSection } from '../src/bench/render.ts';
import { encodeBenchBundle, encodeBenchRows } from '../src/bench/vae-bundle.ts';
import { benchArgs } from './lib.ts';

const args = benchArgs({
  rows: { type: 'string', default: '20000' },
  dim: { type: 'string', default: '512' },
  levels: { type: 'string', default: '3' },
  'codebook-size': { type: 'string', default: '8192' },
  hidden: { type: 'string', default: '256,256' },
  latent: { type: 'string', default: '64' },
  batches: { type: 'string', default: '1,64,1024' },
  threads: { type: 'string', default: '2' },
  workers: { type: 'string' },
  seconds: { type: 'string', default: '3' },
  python: { type: 'string', default: '/usr/bin/python3' },
  json: { type: 'string' },
});
const dim = Number(args.dim);
const k = Number(args['codebook-size']);
const threads = Number(args.threads);
const workers = args.workers === undefined ? Math.min(4, availableParallelism()) : Number(args.workers);
const shape = {
  inputDim: dim, hidden: args.hidden!.split(',').map(Number), latentDim: Number(args.latent),
  codebookSizes: Array.from({ length: Number(args.levels) }, () => k),
};
const tmp = mkdtempSync(join(tmpdir(), 'sidx-forge-encode-'));
try {
  const n = Number(args.rows);
  const data = encodeBenchRows(n, dim);
  const t0 = performance.now();
  const bundle = await encodeBenchBundle(join(tmp, 'model'), shape);
  console.error(`forge encode bench: RQ-VAE ${dim}-${shape.hidden.join('-')}-${shape.latentDim}, ${shape.codebookSizes.length} x ${k} `
    + `built in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${n} synthetic rows; ${threads} threads, pool ${workers} worker(s)`);
  const load0 = loadavg()[0]!;
  const result = await benchEncode(bundle, data, n, {
    batches: args.batches!.split(',').map(Number), threads, workers, minSeconds: Number(args.seconds),
    pythons: [args.python!, 'python3'], workDir: tmp, progress: (msg) => console.error(msg),
  });
  const loads = [load0, loadavg()[0]!];
  console.log(encodeSection(result));
  console.log(`\nload average (1 min) at start / end: ${loads.map((l) => l.toFixed(2)).join(' / ')}`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ shape, items: n, loads, ...result }, null, 2));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
