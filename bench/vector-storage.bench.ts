/**
 * Where the vectors' bytes, the restart time and the rerank time go: the slot file loaded into an in-memory FAISS
 * flat index at start and scored with FAISS scoreSubset (before) against the slot file mapped from the page cache
 * and scored in place (vector/vector-store.ts, native SlotMap: now). Restarts run in fresh child processes, so each
 * RSS is that mode's alone; RSS is split into anonymous pages (heap, FAISS) and file-backed ones (mapped LMDB and
 * slot file pages, which are the page cache's and shared).
 *
 *   node --import tsx bench/vector-storage.bench.ts --dir /tmp/vs --n 100000 [--dim 512] [--queries 300]
 *
 * Build (once per --dir): a catalog of n random items in batches of 1,000 (LMDB commit + VectorState.applyUpsert,
 * timed per batch), a sync (fdatasync + metadata) every 50,000 changes. Then per restart mode: open-to-ready ms,
 * RSS after open, rerank of 1,000 random candidates (median and p90 over --queries; both modes score the same
 * keys and must agree), RSS after the reranks, RSS as ratios to the raw float32 bytes (n * dim * 4).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { processMemory, type ProcessMemory } from '../src/bench/server.ts';
import { Catalog } from '../src/store/catalog.ts';
import { VectorState } from '../src/service/vector-state.ts';
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
const mib = (bytes: number) => bytes / 2 ** 20;
const rawBytes = n * dim * 4;
const quiet = { info: () => {}, warn: (m: string) => console.error(m) };
const SYNC_EVERY = 50_000;
const BATCH = 1000;

function uniformMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rand = seededUniform(seed);
  return Float32Array.from({ length: rows * cols }, () => rand() - 0.5);
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

async function build(): Promise<string> {
  mkdirSync(args.dir, { recursive: true });
  const catalog = Catalog.open(catalogDir);
  const state = await VectorState.open(args.dir, catalog, dim, 'ip', quiet);
  const t0 = performance.now();
  const apply: number[] = [];
  const syncs: number[] = [];
  for (let start = 0; start < n; start += BATCH) {
    const rows = Math.min(BATCH, n - start);
    const vectors = uniformMatrix(rows, dim, start + 1);
    const items = Array.from({ length: rows }, (_, i) => ({
      id: `item-${start + i}`,
      vector: vectors.subarray(i * dim, (i + 1) * dim),
      codes: Int32Array.of((start + i) % 256, ((start + i) >> 8) % 256, (start + i) % 251),
    }));
    const res = catalog.upsertBatch(1, items);
    const t = performance.now();
    state.applyUpsert(res.keys, res.slots, vectors, res.seq);
    apply.push(performance.now() - t);
    if ((start + rows) % SYNC_EVERY === 0 || start + rows === n) {
      const s = performance.now();
      await state.sync();
      syncs.push(performance.now() - s);
    }
  }
  await state.close();
  await catalog.close();
  const a = sorted(apply);
  return `built ${n} items in ${((performance.now() - t0) / 1000).toFixed(1)} s; per 1,000-item batch, slot write: `
    + `p50 ${percentile(a, 50).toFixed(2)} ms, max ${a.at(-1)!.toFixed(2)} ms; every ${SYNC_EVERY} changes: sync (off the lock) `
    + `${syncs.map((x) => x.toFixed(0)).join(', ')} ms`;
}

/** Before: the slot file read into a FAISS flat index in 16,384-slot chunks, as the service did at start. */
function loadIntoFaiss(): VectorIndex {
  const ids = new BigInt64Array(new Uint8Array(readFileSync(join(args.dir, 'vectors.ids'))).buffer);
  if (ids.some((id) => id < 0n)) throw new Error('the bench builds without deletes: every slot is occupied');
  const index = VectorIndex.create({ dim, metric: 'ip' });
  const chunk = new Float32Array(16_384 * dim);
  const fd = openSync(join(args.dir, 'vectors.slots'), 'r');
  for (let first = 0; first < ids.length; first += 16_384) {
    const count = Math.min(16_384, ids.length - first);
    readSync(fd, new Uint8Array(chunk.buffer, 0, count * dim * 4), 0, count * dim * 4, first * dim * 4);
    index.add(chunk.subarray(0, count * dim), ids.subarray(first, first + count));
  }
  closeSync(fd);
  return index;
}

/** One restart mode in this process: open, rerank, report JSON on stdout. */
async function child(mode: string): Promise<void> {
  const t0 = performance.now();
  const catalog = Catalog.open(catalogDir);
  let score: (query: Float32Array, keys: BigInt64Array) => Float32Array;
  let close: () => Promise<void>;
  if (mode === 'faiss') {
    const index = loadIntoFaiss();
    score = (q, k) => index.scoreSubset(q, k);
    close = async () => index.close();
  } else {
    const state = await VectorState.open(args.dir, catalog, dim, 'ip', quiet);
    score = (q, k) => state.store.score(q, k);
    close = () => state.close();
  }
  const readyMs = performance.now() - t0;
  const rssReady = processMemory(process.pid);
  const count = catalog.count;
  const queries = uniformMatrix(Number(args.queries), dim, 99);
  const candidates = Number(args.candidates);
  const rand = seededUniform(5);
  const times: number[] = [];
  let checksum = 0;
  for (let q = 0; q < Number(args.queries); q++) {
    const keys = BigInt64Array.from({ length: candidates }, () => BigInt(1 + Math.floor(rand() * count)));
    const t = performance.now();
    const scores = score(queries.subarray(q * dim, (q + 1) * dim), keys);
    times.push(performance.now() - t);
    checksum += scores[0]! + scores[candidates - 1]!;
  }
  const rssAfter = processMemory(process.pid);
  await close();
  await catalog.close();
  const t = sorted(times);
  console.log(JSON.stringify({ readyMs, rssReady, rssAfter, p50: percentile(t, 50), p90: percentile(t, 90), checksum }));
}

if (args.child) {
  await child(args.child);
} else {
  if (!existsSync(join(args.dir, 'vectors.json'))) console.log(await build());
  const rows = [];
  const checksums = new Set<string>();
  for (const mode of ['faiss', 'mapped']) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', process.argv[1]!, ...process.argv.slice(2), '--child', mode], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number> & Record<'rssReady' | 'rssAfter', ProcessMemory>;
    const rss = (m: ProcessMemory) => `${mib(m.anonBytes).toFixed(0)} + ${mib(m.fileBytes).toFixed(0)} (${(m.anonBytes / rawBytes).toFixed(2)}x + ${(m.fileBytes / rawBytes).toFixed(2)}x)`;
    checksums.add(r.checksum!.toFixed(3));
    rows.push([mode === 'faiss' ? 'slot file read into FAISS, scoreSubset (before)' : 'slot file mapped, SlotMap.scoreSlots (now)', r.readyMs!.toFixed(0),
      rss(r.rssReady), rss(r.rssAfter),
      r.p50!.toFixed(3), r.p90!.toFixed(3)]);
  }
  const size = (name: string) => mib(statSync(join(args.dir, name)).size).toFixed(0);
  console.log(`# ${n} x ${dim} float32 (raw ${mib(rawBytes).toFixed(0)} MiB); LMDB data.mdb ${size('catalog/data.mdb')} MiB, `
    + `slot file ${size('vectors.slots')} MiB; ${args.candidates} candidates per rerank; scores agree: ${checksums.size === 1}`);
  console.log(markdownTable(['restart from', 'open to ready, ms', 'RSS anon + file after open, MiB', 'RSS anon + file after reranks, MiB', 'rerank p50, ms', 'rerank p90, ms'], rows));
}
