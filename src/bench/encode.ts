/**
 * Encode throughput by batch size: sidx's worker-thread ORT pool (the serving path), one ORT session on the
 * calling thread (the price of the worker hop), and a PyTorch CPU baseline running the same model
 * (bench/torch-encode.py: RQ-KMeans, or RQ-VAE / VQ-VAE with the encoder MLP; codebooks and weights read back from
 * encoder.onnx) when a Python with torch is found. All three get the same embeddings and the same number of threads.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeNpy } from '../io/npy.ts';
import { repoPath } from '../paths.ts';
import type { ModelBundle } from '../tokenizer/bundle.ts';
import { EncoderPool } from '../tokenizer/encoder-pool.ts';
import { readEncoderInitializers } from '../train/export.ts';

const TORCH_SCRIPT = repoPath('bench/torch-encode.py');
const CHECK_ROWS = 4096;

export interface EncodeRow {
  batch: number;
  /** items/s */
  sidxPool: number;
  directOrt: number;
  torch?: number;
}

export type TorchInfo = { version: string; threads: number; blas: string; python: string; codesAgree: number; checkedRows: number } | { skipped: string };

export interface EncodeBench {
  /** The model timed (absent in older reports: the served one). */
  model?: string;
  threads: number;
  /** Workers of the sidx pool (absent in reports older than this field: 1). */
  workers?: number;
  rows: EncodeRow[];
  torch: TorchInfo;
}

export interface EncodeBenchOptions {
  batches: number[];
  threads: number;
  minSeconds: number;
  /** Python interpreters to try for the torch baseline, first that imports torch and numpy wins. */
  pythons: string[];
  workDir: string;
  /** Workers of the sidx pool (default 1, with `threads` intra-op threads; else threads / workers each). */
  workers?: number;
  /** The model's description in the report (default: its manifest id). */
  label?: string;
  progress: (msg: string) => void;
}

/** Runs `step(round)` until `minSeconds` have passed (and at least 3 rounds); returns rounds per second. */
async function rate(minSeconds: number, step: (round: number) => Promise<unknown>): Promise<number> {
  await step(0); // warm-up
  const t0 = performance.now();
  let rounds = 0;
  for (;;) {
    await step(rounds++);
    const s = (performance.now() - t0) / 1000;
    if (s >= minSeconds && rounds >= 3) return rounds / s;
  }
}

export function findTorchPython(candidates: string[]): { python: string } | { skipped: string } {
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python };
    tried.push(`${python}: ${(r.error?.message ?? r.stderr.trim().split('\n').pop() ?? '').slice(0, 120)}`);
  }
  return { skipped: `no Python with torch and numpy (tried ${tried.join('; ')}); on Debian: apt-get install python3-torch` };
}

async function torchBaseline(bundle: ModelBundle, data: Float32Array, n: number, o: EncodeBenchOptions, poolCodes: Int32Array):
  Promise<{ rates: Record<string, number>; info: TorchInfo }> {
  const found = findTorchPython(o.pythons);
  if ('skipped' in found) return { rates: {}, info: found };
  const m = bundle.manifest;
  const dir = join(o.workDir, 'torch-encode');
  mkdirSync(dir, { recursive: true });
  // Codebooks (codebook_<l>) and, for rqvae / vqvae, the encoder MLP (enc<i>_w [in, out], enc<i>_b), as exported.
  const inits = await readEncoderInitializers(bundle, (name) => /^(codebook_\d+|enc\d+_[wb])$/.test(name));
  for (const [name, t] of inits) await writeNpy(join(dir, `${name}.npy`), t.data, t.dims);
  let mlpLayers = 0;
  while (inits.has(`enc${mlpLayers}_w`)) mlpLayers++;
  await writeNpy(join(dir, 'embeddings.npy'), data.subarray(0, n * m.inputDim), [n, m.inputDim]);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ levels: m.levels, normalize: m.normalize, topM: m.topM, mlpLayers }));
  o.progress(`encode: PyTorch baseline (${found.python})`);
  const r = spawnSync(found.python, [TORCH_SCRIPT, '--dir', dir, '--batches', o.batches.join(','), '--threads', String(o.threads),
    '--min-seconds', String(o.minSeconds), '--check-rows', String(Math.min(CHECK_ROWS, n))], { encoding: 'utf8', maxBuffer: 256 << 20, timeout: 1_800_000 });
  if (r.status !== 0) return { rates: {}, info: { skipped: `torch baseline failed: ${(r.error?.message ?? r.stderr).slice(-400)}` } };
  const out = JSON.parse(r.stdout) as { torch: string; threads: number; blas: string; rates: Record<string, number>; codes: number[] };
  let agree = 0;
  const rows = out.codes.length / bundle.manifest.levels;
  const L = bundle.manifest.levels;
  for (let i = 0; i < rows; i++) {
    let same = true;
    for (let l = 0; l < L; l++) if (out.codes[i * L + l] !== poolCodes[i * L + l]) same = false;
    if (same) agree++;
  }
  return { rates: out.rates, info: { version: out.torch, threads: out.threads, blas: out.blas, python: found.python, codesAgree: agree / rows, checkedRows: rows } };
}

export async function benchEncode(bundle: ModelBundle, data: Float32Array, n: number, o: EncodeBenchOptions): Promise<EncodeBench> {
  const dim = bundle.manifest.inputDim;
  const slice = (batch: number, round: number) => {
    const start = (round * batch) % Math.max(1, n - batch + 1);
    return data.subarray(start * dim, (start + batch) * dim);
  };
  const workers = o.workers ?? 1;
  const pool = await EncoderPool.create(bundle, { workers, provider: 'cpu', intraOpThreads: Math.max(1, Math.floor(o.threads / workers)) });
  const session = await ort.InferenceSession.create(bundle.encoderPath, { intraOpNumThreads: o.threads, interOpNumThreads: 1 });
  const rows: EncodeRow[] = [];
  let poolCodes: Int32Array;
  try {
    for (const batch of o.batches) {
      o.progress(`encode: batch ${batch}`);
      const sidxPool = batch * (await rate(o.minSeconds, (r) => pool.encode(slice(batch, r), batch)));
      const directOrt = batch * (await rate(o.minSeconds, (r) => session.run({ embedding: new ort.Tensor('float32', slice(batch, r), [batch, dim]) })));
      rows.push({ batch, sidxPool, directOrt });
    }
    const checkRows = Math.min(CHECK_ROWS, n);
    poolCodes = (await pool.encode(data.subarray(0, checkRows * dim), checkRows)).codes;
  } finally {
    await session.release();
    await pool.close();
  }
  const torch = await torchBaseline(bundle, data, Math.min(n, 20_000), o, poolCodes);
  for (const row of rows) row.torch = torch.rates[String(row.batch)];
  return { model: o.label ?? bundle.manifest.id, threads: o.threads, workers, rows, torch: torch.info };
}
