/**
 * The rerank's in-memory copy as float32 (FAISS flat, `vectors.storage` f32) against 8-bit codes re-scored from the
 * slot file (sq8, src/vector/sq8-store.ts), FAISS product-quantisation codes re-scored alike (pq,
 * src/vector/pq-store.ts; with --pq), and FAISS's own SQ8 (IndexScalarQuantizer QT_8bit) for the scoring
 * speed of its non-SIMD Debian build. Each storage opens in a fresh child process, so each RSS is its own.
 *
 *   node --import tsx bench/vector-quant.bench.ts --dir tmp/vq --n 1000000 [--dim 512] [--queries 200]
 *     [--candidates 1000] [--rescore 10,20,50,100] [--train 10000] [--faiss] [--skip-f32]
 *     [--pq] [--pq-m 0] [--pq-rescore 50,100,200,500] [--margin M]
 *
 * Build (once per --dir): n clustered unit vectors (src/eval/synthetic.ts, 1,000 centres, noise 0.5) written in
 * 10,000-row chunks to the slot file and the sq8 store (trained on the first --train). Queries come from the same
 * centres. Child f32: loads the slot file into FAISS as VectorState does, finds each query's exact top --candidates
 * (the hardest candidate sets: all near neighbours, close scores), saves them as the ground truth, times
 * scoreSubset over them. Child sq8: loads the codes as a restart does, times scoreSubset (codes + pread re-score of
 * the best --rescore) over the same candidates, recall@10 against the exact order for each --rescore. Child faiss:
 * the same on FAISS SQ8 (codes only, decoded one vector at a time). --pq: a child first trains and writes the pq
 * codes (--pq-m sub-quantizers, 0 = dim / 8) from the slot file once per --dir, as a catalog opened as pq for the
 * first time does; child pq then loads them as a restart does and reranks like sq8 for each --pq-rescore. RSS is reported as the process's and as its
 * growth over the process before the storage was opened, both as ratios to the raw float32 bytes (n * dim * 4).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusteredEmbeddings, seededGaussian } from '../src/eval/synthetic.ts';
import { rankByScore } from '../src/service/score-rank.ts';
import { VectorFile } from '../src/vector/vector-file.ts';
import { SlotFile } from '../src/vector/slot-file.ts';
import { PqStore } from '../src/vector/pq-store.ts';
import { Sq8Store } from '../src/vector/sq8-store.ts';
import { VectorIndex } from '../src/vector/vector-index.ts';
import { benchArgs, markdownTable, percentile } from './lib.ts';

const args = benchArgs({
  dir: { type: 'string', default: 'tmp/vector-quant' },
  n: { type: 'string', default: '100000' },
  dim: { type: 'string', default: '512' },
  queries: { type: 'string', default: '200' },
  candidates: { type: 'string', default: '1000' },
  rescore: { type: 'string', default: '10,20,50,100' },
  train: { type: 'string', default: '10000' },
  faiss: { type: 'boolean', default: false },
  'skip-f32': { type: 'boolean', default: false },
  pq: { type: 'boolean', default: false },
  'pq-m': { type: 'string', default: '0' },
  'pq-rescore': { type: 'string', default: '50,100,200,500' },
  segment: { type: 'string', default: '250000' },
  margin: { type: 'string' },
  child: { type: 'string' },
});
const n = Number(args.n);
const dim = Number(args.dim);
const nq = Number(args.queries);
const nc = Number(args.candidates);
const rescores = args.rescore.split(',').map(Number);
const pqRescores = args['pq-rescore'].split(',').map(Number);
const pqOptions = () => ({ rescore: pqRescores[0]!, trainSize: Number(args.train), pqM: Number(args['pq-m']) });
const base = join(args.dir, 'vectors');
/** --margin: sq8's range margin (src/vector/sq8-store.ts RANGE_MARGIN unless given), for the build's fit. */
const sq8Margin = () => (args.margin === undefined ? {} : { rangeMargin: Number(args.margin) });
const truthPath = join(args.dir, `truth-${nq}x${nc}.bin`);
const rawBytes = n * dim * 4;
const CHUNK = 10_000;
const CENTRES = 1000;
const mib = (bytes: number) => bytes / 2 ** 20;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

function centres(): Float32Array {
  const g = seededGaussian(1);
  return Float32Array.from({ length: CENTRES * dim }, g);
}

const queries = () => clusteredEmbeddings({ n: nq, dim, seed: 7, centres: centres() });

function build(): string {
  mkdirSync(args.dir, { recursive: true });
  const t0 = performance.now();
  const file = VectorFile.open(`${base}.f32`, dim);
  const slots = SlotFile.open(base, dim, `${base}.f32`);
  const store = Sq8Store.open(base, slots, 'ip', { rescore: 100, trainSize: Number(args.train), ...sq8Margin() });
  slots.reset();
  store.reset();
  const c = centres();
  for (let first = 0; first < n; first += CHUNK) {
    const rows = Math.min(CHUNK, n - first);
    const data = clusteredEmbeddings({ n: rows, dim, seed: 1000 + first / CHUNK, centres: c });
    const ids = BigInt64Array.from({ length: rows }, (_, i) => BigInt(first + i + 1));
    const rowsAt = Uint32Array.from({ length: rows }, (_, i) => first + i);
    file.write(rowsAt, data);
    slots.assign(ids, rowsAt);
    store.add(data, ids);
  }
  store.close();
  slots.close();
  file.close();
  const buildMs = performance.now() - t0;
  writeFileSync(join(args.dir, 'built.json'), JSON.stringify({ n, dim, buildMs }));
  return `built ${n} x ${dim} in ${(buildMs / 1000).toFixed(1)} s`;
}

/** RSS now, and its growth over `before`, as ratios to the raw float32 bytes. */
function rss(before: number): { rss: number; ratio: number; growth: number } {
  const now = process.memoryUsage().rss;
  return { rss: now, ratio: now / rawBytes, growth: (now - before) / rawBytes };
}

/** Times `score` over each query's candidates; recall@10 of its order against the exact top 10 (truth's first 10). */
function rerank(score: (q: Float32Array, keys: BigInt64Array) => Float32Array, truth: BigInt64Array) {
  const qs = queries();
  const times: number[] = [];
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const keys = truth.subarray(q * nc, (q + 1) * nc);
    const t = performance.now();
    const scores = score(qs.subarray(q * dim, (q + 1) * dim), keys);
    times.push(performance.now() - t);
    const want = new Set(keys.subarray(0, 10));
    for (const p of [...rankByScore(scores, 1, 10)].slice(0, 10)) if (want.has(keys[p]!)) hits++;
  }
  const t = sorted(times);
  return { p50: percentile(t, 50), p95: percentile(t, 95), recall: hits / (nq * 10) };
}

/**
 * The exact top --candidates of each query without holding every vector (for catalogs whose f32 child would not
 * fit): FAISS flat search over --segment-vector segments (250,000) of the slot file, merged. Ids are slot + 1 (the build's).
 */
async function segmentedTruth(slots: SlotFile): Promise<number> {
  const SEGMENT = Number(args.segment);
  slots.load();
  const qs = queries();
  const best = Array.from({ length: nq }, () => [] as Array<{ k: bigint; s: number }>);
  const rows = new Float32Array(Math.min(SEGMENT, slots.slots) * dim);
  for (let first = 0; first < slots.slots; first += SEGMENT) {
    const count = Math.min(SEGMENT, slots.slots - first);
    const part = Int32Array.from({ length: count }, (_, i) => first + i);
    slots.readSlots(part, rows.subarray(0, count * dim));
    const index = VectorIndex.create({ dim, metric: 'ip' });
    index.add(rows.subarray(0, count * dim), BigInt64Array.from(part, (p) => BigInt(p + 1)));
    const found = await index.search(qs, nc);
    index.close();
    best.forEach((b, q) => {
      for (let j = 0; j < nc; j++) b.push({ k: found.labels[q * nc + j]!, s: found.distances[q * nc + j]! });
      b.sort((x, y) => y.s - x.s);
      b.length = Math.min(b.length, nc);
    });
  }
  writeFileSync(truthPath, BigInt64Array.from(best.flatMap((b) => b.map((e) => e.k))));
  return nq * nc;
}

/** Every stored vector of the slot file into `index` (ids = the keys), 16,384 slots at a time. */
function loadInto(slots: SlotFile, index: VectorIndex): void {
  let stored: BigInt64Array = new BigInt64Array(0);
  slots.load((ids) => { stored = ids; });
  const CHUNK = 16_384;
  const rows = new Float32Array(Math.min(CHUNK, stored.length) * dim);
  for (let first = 0; first < stored.length; first += CHUNK) {
    const ids = stored.subarray(first, first + CHUNK);
    const view = rows.subarray(0, ids.length * dim);
    slots.readSlots(slots.slotsOf(ids), view);
    index.add(view, ids);
  }
}

/** The pq codes of every slot, as opening an f32 catalog as pq does: trained on the first --train, then encoded. */
function buildPq(slots: SlotFile): object {
  const t0 = performance.now();
  const store = PqStore.open(base, slots, 'ip', pqOptions());
  store.reset();
  let stored: BigInt64Array = new BigInt64Array(0);
  slots.load((ids) => { stored = ids; });
  let trainMs = 0;
  const rows = new Float32Array(CHUNK * dim);
  for (let first = 0; first < stored.length; first += CHUNK) {
    const ids = stored.subarray(first, first + CHUNK);
    const view = rows.subarray(0, ids.length * dim);
    slots.readSlots(slots.slotsOf(ids), view);
    const t = performance.now();
    store.add(view, ids);
    if (trainMs === 0 && store.trained) trainMs = performance.now() - t;
  }
  store.close();
  const buildMs = performance.now() - t0;
  writeFileSync(join(args.dir, 'built-pq.json'), JSON.stringify({ n, dim, m: store.m, pqM: args['pq-m'], train: args.train, trainMs, buildMs }));
  return { trainMs, buildMs };
}

const readTruth = () => new BigInt64Array(readFileSync(truthPath).buffer.slice(0));

async function child(mode: string): Promise<object> {
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const slots = SlotFile.open(base, dim, `${base}.f32`);
  if (mode === 'f32') {
    const index = VectorIndex.create({ dim, metric: 'ip' });
    loadInto(slots, index);
    const readyMs = performance.now() - t0;
    const ready = rss(before);
    if (!existsSync(truthPath)) {
      const found = await index.search(queries(), nc);
      writeFileSync(truthPath, found.labels);
    }
    const r = rerank((q, keys) => index.scoreSubset(q, keys), readTruth());
    return { readyMs, ready, after: rss(before), runs: [{ rescore: 'exact', ...r }] };
  }
  if (mode === 'truth') return { truth: await segmentedTruth(slots) };
  if (mode === 'build-pq') return buildPq(slots);
  if (mode === 'sq8' || mode === 'pq') {
    const opts = mode === 'sq8' ? { rescore: rescores[0]!, trainSize: Number(args.train), pqM: 0, ...sq8Margin() } : pqOptions();
    const store = mode === 'sq8' ? Sq8Store.open(base, slots, 'ip', opts) : PqStore.open(base, slots, 'ip', opts);
    store.load();
    await store.codesLoaded(); // read in the background: until then every candidate is scored exactly
    const readyMs = performance.now() - t0;
    const ready = rss(before);
    const truth = readTruth();
    const runs = [];
    for (const r of mode === 'sq8' ? rescores : pqRescores) {
      opts.rescore = r; // the store reads its options at each rerank
      runs.push({ rescore: r, ...rerank((q, keys) => store.rankSubset(q, keys, 0, 10).scores, truth) });
    }
    return { readyMs, ready, after: rss(before), codeBytes: store.codeBytes, runs };
  }
  // FAISS SQ8: trained on the first --train vectors of the slot file, then every vector added.
  const index = VectorIndex.create({ dim, metric: 'ip', factory: 'SQ8' });
  const sample = new Float32Array(Math.min(n, Number(args.train)) * dim);
  slots.readSlots(Int32Array.from({ length: sample.length / dim }, (_, i) => i), sample);
  await index.train(sample);
  loadInto(slots, index);
  const readyMs = performance.now() - t0;
  const ready = rss(before);
  const r = rerank((q, keys) => index.scoreSubset(q, keys), readTruth());
  return { readyMs, ready, after: rss(before), runs: [{ rescore: 'none (codes only)', ...r }] };
}

if (args.child) {
  console.log(JSON.stringify(await child(args.child)));
} else {
  if (!existsSync(join(args.dir, 'built.json'))) console.log(build());
  const builtPq = join(args.dir, 'built-pq.json');
  const pqStale = () => !existsSync(builtPq) || (JSON.parse(readFileSync(builtPq, 'utf8')) as { pqM: string }).pqM !== args['pq-m'];
  if (args.pq && pqStale()) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', process.argv[1]!, ...process.argv.slice(2), '--child', 'build-pq'],
      { encoding: 'utf8', maxBuffer: 1 << 24 });
    console.log(`pq codes built: ${out.trim().split('\n').at(-1)}`);
  }
  // --skip-f32: no float32 child (its FAISS copy would not fit); the ground truth comes from segments.
  const modes = [...(args['skip-f32'] ? (existsSync(truthPath) ? [] : ['truth']) : ['f32']), 'sq8', ...(args.pq ? ['pq'] : []),
    ...(args.faiss ? ['faiss-sq8'] : [])];
  const rows = [];
  for (const mode of modes) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', process.argv[1]!, ...process.argv.slice(2), '--child', mode],
      { encoding: 'utf8', maxBuffer: 1 << 24 });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as {
      readyMs: number; ready: ReturnType<typeof rss>; after: ReturnType<typeof rss>; codeBytes?: number;
      runs?: Array<{ rescore: string | number; p50: number; p95: number; recall: number }>;
    };
    if (!r.runs) continue;
    for (const run of r.runs) {
      rows.push([mode, String(run.rescore), (r.readyMs / 1000).toFixed(1),
        `${mib(r.ready.rss).toFixed(0)} (${r.ready.ratio.toFixed(3)}x; +${r.ready.growth.toFixed(3)}x)`,
        `${mib(r.after.rss).toFixed(0)} (${r.after.ratio.toFixed(3)}x; +${r.after.growth.toFixed(3)}x)`,
        run.p50.toFixed(3), run.p95.toFixed(3), run.recall.toFixed(4)]);
    }
  }
  const size = (name: string) => mib(statSync(join(args.dir, name)).size).toFixed(0);
  const pqInfo = args.pq ? `, vectors.pq ${size('vectors.pq')} MiB (${readFileSync(builtPq, 'utf8')})` : '';
  console.log(`# ${n} x ${dim} clustered float32 (raw ${mib(rawBytes).toFixed(0)} MiB); vectors.f32 ${size('vectors.f32')} MiB, `
    + `vectors.sq8 ${size('vectors.sq8')} MiB${pqInfo}; ${nq} queries x their exact top ${nc} as candidates`);
  console.log(markdownTable(['storage', 'rescore', 'open s', 'RSS after open, MiB (x raw; growth)', 'RSS after reranks',
    'rerank p50 ms', 'p95 ms', 'recall@10 vs exact'], rows));
}
