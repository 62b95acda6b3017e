/**
 * Cost of one single-row call through the encoder pool: `pool.beam(1 row, width 32)` (expand: "beam" retrieval)
 * and `pool.encode(1 row)`, per shipped model bundle. One worker, one intra-op thread, calls awaited one by one.
 * Per call it prints wall µs, process CPU µs (all threads) and, from /proc/self/task/<tid>/schedstat ("-" where /proc
 * is missing), CPU µs of the main thread, of the encoder worker (the busiest other thread) and of all other threads
 * (V8's GC and platform threads, ORT's, libuv's).
 * Rounds alternate models and operations so noise from other processes spreads evenly; medians over rounds.
 *
 *   SIDX_SHARED_DATA=/work/shared/data node --import tsx bench/beam-call.bench.ts [--rounds 7] [--calls 1500]
 *        [--models models/default,models/rqkmeans-3x256] [--width 32] [--norm-weight 1] [--beam-model native,merged,separate]
 *        [--ops encode,beam]
 * `--beam-model` lists EncoderPoolOptions.beamModel values (native: one ORT run and the addon's beam, merged: one ORT
 * run per beam, separate: two), one pool
 * each per model, measured alternately in the same process: compare their ratios.
 * Query rows come from $SIDX_SHARED_DATA/scientific/text_emb.npy (random unit rows without it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { EncoderPool } from '../src/tokenizer/encoder-pool.ts';
import { readNpy } from '../src/io/npy.ts';
import { benchArgs, markdownTable } from './lib.ts';
import { seededUniform } from '../src/random.ts';

const args = benchArgs({
  rounds: { type: 'string', default: '7' }, calls: { type: 'string', default: '1500' },
  models: { type: 'string', default: 'models/default,models/rqkmeans-3x256' },
  width: { type: 'string', default: '32' }, 'norm-weight': { type: 'string', default: '1' },
  'beam-model': { type: 'string', default: 'native' }, ops: { type: 'string', default: 'encode,beam' },
});
const beamModels = String(args['beam-model']).split(',').map((m) => (m === 'separate' || m === 'merged' ? m : 'native'));
const rounds = Number(args.rounds);
const calls = Number(args.calls);
const width = Number(args.width);
const normWeight = Number(args['norm-weight']);
const DIM = 512;

async function queryRows(): Promise<{ data: Float32Array; n: number }> {
  const shared = process.env.SIDX_SHARED_DATA;
  const npy = shared ? await readNpy(join(shared, 'scientific/text_emb.npy')).catch(() => undefined) : undefined;
  if (npy && npy.data instanceof Float32Array && npy.data.length % DIM === 0) return { data: npy.data, n: npy.data.length / DIM };
  const random = seededUniform(12345);
  const data = Float32Array.from({ length: 256 * DIM }, () => random() - 0.5);
  return { data, n: 256 };
}

/** CPU time in ns of each thread of this process (schedstat); empty where /proc is missing. */
function threadCpuNs(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      out.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    }
  } catch {
    out.clear();
  }
  return out;
}

/** Per-call µs of the main thread, of the busiest other thread (the encoder worker) and of all the rest. */
function threadShares(before: Map<string, number>, after: Map<string, number>, count: number) {
  if (after.size === 0) return { main: Number.NaN, worker: Number.NaN, rest: Number.NaN };
  const delta = (tid: string) => ((after.get(tid) ?? 0) - (before.get(tid) ?? 0)) / 1000 / count;
  const others = [...after.keys()].filter((t) => t !== String(process.pid)).map(delta);
  const worker = Math.max(0, ...others);
  return { main: delta(String(process.pid)), worker, rest: others.reduce((a, b) => a + b, 0) - worker };
}

const { data, n } = await queryRows();
const rowsOf = Array.from({ length: n }, (_, i) => data.subarray(i * DIM, (i + 1) * DIM));
const pools = await Promise.all(String(args.models).split(',').flatMap((dir) => beamModels.map(async (beamModel) => ({
  dir: beamModels.length > 1 ? `${dir} (${beamModel})` : dir,
  pool: await EncoderPool.create(await loadBundle(resolve(dir)), { workers: 1, provider: 'cpu', intraOpThreads: 1, beamModel }),
}))));

type Op = 'encode' | 'beam';
const ops = String(args.ops).split(',').filter((o): o is Op => o === 'encode' || o === 'beam');
const COLUMNS = ['wall', 'cpu', 'main', 'worker', 'rest'] as const;
const samples = new Map<string, Record<(typeof COLUMNS)[number], number[]>>();

async function segment(pool: EncoderPool, op: Op, count: number) {
  let row = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const t0s = threadCpuNs();
  for (let i = 0; i < count; i++) {
    const q = rowsOf[row++ % n]!;
    if (op === 'beam') await pool.beam(q, 1, width, normWeight);
    else await pool.encode(q, 1);
  }
  const c = process.cpuUsage(c0);
  return { wall: ((performance.now() - t0) * 1000) / count, cpu: (c.user + c.system) / count, ...threadShares(t0s, threadCpuNs(), count) };
}

for (const { pool } of pools) for (const op of ops) await segment(pool, op, 200); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const { dir, pool } of r % 2 ? [...pools].reverse() : pools) {
    for (const op of r % 2 ? [...ops].reverse() : ops) {
      const s = await segment(pool, op, calls);
      const key = `${dir}\t${op}`;
      const acc = samples.get(key) ?? { wall: [], cpu: [], main: [], worker: [], rest: [] };
      for (const c of COLUMNS) acc[c].push(s[c]);
      samples.set(key, acc);
    }
  }
}
await Promise.all(pools.map(({ pool }) => pool.close()));

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');
console.log(`beam model ${beamModels.join(' vs ')}, width ${width}, normWeight ${normWeight}, ${rounds} rounds x ${calls} calls, 1 worker x 1 thread, `
  + `medians over rounds (µs per call)`);
console.log(markdownTable(['model', 'call', 'wall', 'CPU: process', 'main thread', 'encoder worker', 'other threads'],
  [...samples].map(([key, s]) => [...key.split('\t'), ...COLUMNS.map((c) => fmt(median(s[c])))])));
