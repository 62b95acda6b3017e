/**
 * RQ-VAE epoch time: sidx (ONNX Runtime graphs, src/train/rqvae.ts) vs PyTorch (bench/rqvae_torch.py, Debian
 * python3-torch 1.13, CPU) on the same data, the same initial parameters (written by sidx after its RQ-KMeans
 * codebook init and loaded by the PyTorch script), the same recipe (FORGE: MLP D-256-256-64, Sinkhorn assignment
 * eps 10 x 5 rounds, FORGE commitment, straight-through, gradient codebooks, AdamW, warm-up + cosine), the same
 * batch size and thread count, in one run. Epoch time = the training steps of one epoch (no evaluation).
 *
 *   node --import tsx bench/rqvae-epoch.bench.ts                           # 100K x 512 synthetic, 3 x 8192
 *   node --import tsx bench/rqvae-epoch.bench.ts --codebook-size 256
 *   node --import tsx bench/rqvae-epoch.bench.ts --data scientific --codebook-size 256 --batch-size 256 --epochs 10
 * Options: --data synthetic|scientific|FILE.npy, --rows, --dim, --clusters (synthetic), --levels, --codebook-size,
 * --batch-size, --epochs (per run), --threads, --torch-sinkhorn forge[,scaling] (PyTorch variants), --python,
 * --json FILE. Runs go in ABBA order (sidx, PyTorch, PyTorch, sidx; the second sidx run starts from the same
 * initial parameters) so that load drifting on a shared machine hits both sides alike; the first epoch of every
 * run is warm-up and left out of the median and min.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { trainRqVae } from '../src/train/rqvae.ts';
import { paramLayout } from '../src/train/rqvae-model.ts';
import { benchArgs, markdownTable } from './lib.ts';

const args = benchArgs({
  data: { type: 'string', default: 'synthetic' },
  rows: { type: 'string', default: '100000' },
  dim: { type: 'string', default: '512' },
  clusters: { type: 'string', default: '1000' },
  levels: { type: 'string', default: '3' },
  'codebook-size': { type: 'string', default: '8192' },
  'batch-size': { type: 'string', default: '2048' },
  epochs: { type: 'string', default: '3' },
  threads: { type: 'string', default: '2' },
  'torch-sinkhorn': { type: 'string', default: 'forge' },
  python: { type: 'string', default: '/usr/bin/python3' },
  json: { type: 'string' },
});
const int = (name: keyof typeof args) => Number(args[name]);

/** Seeded synthetic clustered embeddings, rows L2-normalised (like text embeddings). */
function synthetic(n: number, dim: number, clusters: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const centres = Float32Array.from({ length: clusters * dim }, gauss);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(uniform() * clusters);
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const v = centres[c * dim + j]! + 0.5 * gauss();
      out[i * dim + j] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let j = 0; j < dim; j++) out[i * dim + j]! *= inv;
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'sidx-rqvae-bench-'));
try {
  let data: Float32Array;
  let dim: number;
  let source: string;
  if (args.data === 'synthetic') {
    dim = int('dim');
    data = synthetic(int('rows'), dim, int('clusters'), 42);
    source = `synthetic ${int('rows')} x ${dim}, ${int('clusters')} clusters (seed 42, rows L2-normalised)`;
  } else {
    const path = args.data === 'scientific' ? resolve(import.meta.dirname, '../../shared/data/scientific/text_emb.npy') : args.data!;
    const a = await readNpy(path);
    data = a.data;
    dim = a.shape[1]!;
    source = path;
  }
  const n = data.length / dim;
  const dataPath = join(tmp, 'data.npy');
  await writeNpy(dataPath, data, [n, dim]);
  const levels = int('levels');
  const k = int('codebook-size');
  const batch = Math.min(int('batch-size'), n);
  const epochs = int('epochs');
  const threads = int('threads');
  const paramsPrefix = join(tmp, 'init');
  console.error(`rqvae epoch bench: ${source}; ${levels} x ${k}, batch ${batch}, ${epochs} epochs, ${threads} threads`);

  const loads: number[] = [loadavg()[0]!];
  const variants = args['torch-sinkhorn']!.split(',').filter(Boolean);
  // ABBA order (sidx, torch..., torch... reversed, sidx) so load drifting over the run hits both sides alike.
  const order = ['sidx', ...variants, ...[...variants].reverse(), 'sidx'];
  let initial: Float32Array | undefined;
  let last: Awaited<ReturnType<typeof trainRqVae>> | undefined;
  const runs: Record<string, { seconds: number[]; recon: number[]; version?: string }> = {};
  for (const side of order) {
    const record = (runs[side] ??= { seconds: [], recon: [] });
    if (side === 'sidx') {
      last = await trainRqVae(data, dim, {
        method: 'rqvae', codebookSizes: Array(levels).fill(k), batchSize: batch, epochs, warmupEpochs: 1, seed: 0,
        threads, evalEvery: 0, initIterations: 10, ...(initial === undefined ? {} : { initialParams: initial }),
        onProgress: (e) => {
          if (e.kind === 'initialised') {
            initial = e.params.slice();
            const layout = paramLayout({ inputDim: dim, hidden: [256, 256], latentDim: 64, codebookSizes: Array(levels).fill(k) });
            writeFileSync(`${paramsPrefix}.bin`, e.params);
            writeFileSync(`${paramsPrefix}.json`, JSON.stringify(layout.specs));
          } else if (e.kind === 'epoch') {
            record.seconds.push(e.trainSeconds);
            record.recon.push(e.recon);
            console.error(`  sidx epoch ${e.epoch + 1}: ${e.trainSeconds.toFixed(2)} s, recon ${e.recon.toFixed(6)}, commit ${e.commit.toFixed(6)}`);
          }
        },
      });
    } else {
      const { stdout } = await promisify(execFile)(args.python!, [
        resolve(import.meta.dirname, 'rqvae_torch.py'), '--data', dataPath, '--params', paramsPrefix, '--levels', String(levels),
        '--codebook-size', String(k), '--batch-size', String(batch), '--epochs', String(epochs), '--schedule-epochs',
        String(epochs), '--warmup-epochs', '1', '--threads', String(threads), '--sinkhorn', side,
      ], { maxBuffer: 1 << 24 });
      const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
      record.version = lines.at(-1).torch;
      for (const e of lines.filter((l) => l.summary !== true)) {
        record.seconds.push(e.seconds);
        record.recon.push(e.recon);
        console.error(`  torch (${side}) epoch ${e.epoch + 1}: ${e.seconds.toFixed(2)} s, recon ${e.recon.toFixed(6)}, commit ${e.commit.toFixed(6)}`);
      }
    }
    loads.push(loadavg()[0]!);
  }
  // Per run, the first epoch is warm-up (graph/session set-up, allocator growth): left out of the statistics.
  const steady = (secs: number[]) => secs.filter((_, i) => epochs === 1 || i % epochs !== 0).sort((a, b) => a - b);
  const median = (a: number[]) => a[Math.floor((a.length - 1) / 2)]!;
  const sidxSteady = steady(runs.sidx!.seconds);
  const rows = Object.entries(runs).map(([side, r]) => {
    const st = steady(r.seconds);
    return [side === 'sidx' ? 'sidx (ONNX Runtime)' : `PyTorch ${r.version} (Sinkhorn: ${side})`, r.seconds.map((t) => t.toFixed(2)).join(' '),
      median(st).toFixed(2), st[0]!.toFixed(2), (median(st) / median(sidxSteady)).toFixed(2), r.recon.slice(0, epochs).map((v) => v.toFixed(6)).join(' ')];
  });
  console.log(`\n${source}; RQ-VAE ${dim}-256-256-64, ${levels} x ${k}, batch ${batch} (${Math.floor(n / batch)} steps/epoch), `
    + `${threads} threads, ${epochs} epochs per run, order ${order.join(' ')}; 1-min load average ${loads.map((l) => l.toFixed(1)).join(' -> ')}\n`);
  console.log(markdownTable(['run', 'epoch times (s), all runs', 'median (s)', 'min (s)', 'median / sidx median', 'recon per epoch (first run)'], rows));
  console.log(`\nsidx final relative reconstruction error ${last!.metrics.reconstructionError?.toFixed(4)}, `
    + `utilisation ${last!.metrics.perLevel.map((l) => (100 * l.utilisation).toFixed(1)).join('/')}%`);
  if (args.json !== undefined) {
    writeFileSync(args.json, JSON.stringify({ source, dim, n, levels, k, batch, epochs, threads, order, loads, runs }, null, 2));
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
