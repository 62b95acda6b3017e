/**
 * Where the vectors' bytes and the restart time go: the rerank reading vectors in place from the LMDB records
 * (CatalogScorer, the service's path) against a FAISS flat index holding its own copy, loaded from its file as the
 * service's checkpoint used to be. Each measurement runs in a fresh child process, so RSS is that mode's alone.
 *
 *   node --import tsx bench/vector-storage.bench.ts --dir /tmp/vs --n 100000 [--dim 512] [--queries 300]
 *
 * Prints: catalog build, LMDB and FAISS file sizes, then per mode: open-to-ready ms, RSS after open, rerank of
 * 1,000 random candidates (median and p90 ms over --queries), RSS after the reranks, all as ratios to the raw
 * float32 bytes (n * dim * 4).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Catalog } from '../src/store/catalog.ts';
import { CatalogScorer } from '../src/service/vector-scorer.ts';
import { VectorIndex } from '../src/vector/vector-index.ts';
import { seededUniform } from '../src/random.ts';
import { benchArgs, markdownTable, percentile } from './lib.ts';

const args = benchArgs({
  dir: { type: 'string', default: '/tmp/sidx-vector-storage' },
  n: { type: 'string', default: '100000' },
  dim: { type: 'string', default: '512' },
  queries: { type: 'string', default: '300' },
  candidates: { type: 'string', default: '1000' },
  child: { type: 'string' },
});
const n = Number(args.n);
const dim = Number(args.dim);
const catalogDir = join(args.dir, 'catalog');
const faissPath = join(args.dir, 'vectors.faiss');
const mib = (bytes: number) => bytes / 2 ** 20;
const rawBytes = n * dim * 4;

function uniformMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rand = seededUniform(seed);
  return Float32Array.from({ length: rows * cols }, () => rand() - 0.5);
}

async function build(): Promise<void> {
  mkdirSync(args.dir, { recursive: true });
  const catalog = Catalog.open(catalogDir);
  const index = VectorIndex.create({ dim, metric: 'ip' });
  const t0 = performance.now();
  const BATCH = 1000;
  for (let start = catalog.count; start < n; start += BATCH) {
    const rows = Math.min(BATCH, n - start);
    const vectors = uniformMatrix(rows, dim, start + 1);
    const items = Array.from({ length: rows }, (_, i) => ({
      id: `item-${start + i}`,
      vector: vectors.subarray(i * dim, (i + 1) * dim),
      codes: Int32Array.of((start + i) % 256, ((start + i) >> 8) % 256, (start + i) % 251),
    }));
    const res = catalog.upsertBatch(1, items);
    index.add(vectors, res.keys);
  }
  await index.write(faissPath);
  index.close();
  await catalog.close();
  console.log(`built ${n} items in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** One mode in this process: open, score, report JSON on stdout. */
async function child(mode: string): Promise<void> {
  const t0 = performance.now();
  const catalog = Catalog.open(catalogDir);
  let scorer: { scoreSubset(q: Float32Array, k: BigInt64Array): Float32Array };
  let index: VectorIndex | undefined;
  if (mode === 'faiss') scorer = index = await VectorIndex.read(faissPath);
  else scorer = new CatalogScorer(catalog, dim, 'ip');
  const readyMs = performance.now() - t0;
  const rssReady = process.memoryUsage().rss;
  const count = catalog.count;
  const queries = uniformMatrix(Number(args.queries), dim, 99);
  const candidates = Number(args.candidates);
  let state = 12345;
  const times: number[] = [];
  let checksum = 0;
  for (let q = 0; q < Number(args.queries); q++) {
    const keys = new BigInt64Array(candidates);
    for (let i = 0; i < candidates; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      keys[i] = BigInt(1 + (state % count));
    }
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const t = performance.now();
    const scores = scorer.scoreSubset(query, keys);
    times.push(performance.now() - t);
    checksum += scores[0]!;
  }
  const rssAfter = process.memoryUsage().rss;
  times.sort((a, b) => a - b);
  index?.close();
  await catalog.close();
  console.log(JSON.stringify({ mode, readyMs, rssReady, rssAfter, p50: percentile(times, 50), p90: percentile(times, 90), checksum }));
}

if (args.child) {
  await child(args.child);
} else {
  if (!existsSync(faissPath)) await build();
  const lmdbBytes = statSync(join(catalogDir, 'data.mdb')).size;
  const faissBytes = statSync(faissPath).size;
  const rows = [];
  for (const mode of ['faiss', 'lmdb']) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', process.argv[1]!, ...process.argv.slice(2), '--child', mode], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
    rows.push([mode === 'faiss' ? 'FAISS flat copy (file read at open)' : 'in place from LMDB records', r.readyMs!.toFixed(0),
      `${mib(r.rssReady!).toFixed(0)} (${(r.rssReady! / rawBytes).toFixed(2)}x)`, `${mib(r.rssAfter!).toFixed(0)} (${(r.rssAfter! / rawBytes).toFixed(2)}x)`,
      r.p50!.toFixed(3), r.p90!.toFixed(3)]);
  }
  console.log(`# ${n} x ${dim} float32 (raw ${mib(rawBytes).toFixed(0)} MiB); LMDB data.mdb ${mib(lmdbBytes).toFixed(0)} MiB `
    + `(${(lmdbBytes / rawBytes).toFixed(2)}x raw), FAISS file ${mib(faissBytes).toFixed(0)} MiB; ${args.candidates} candidates per rerank`);
  console.log(markdownTable(['vectors read from', 'open to ready, ms', 'RSS after open, MiB', 'RSS after reranks, MiB', 'rerank p50, ms', 'rerank p90, ms'], rows));
}
