/**
 * The live posting index (src/service/posting-index.ts) against the catalog's LMDB scans on a large synthetic key
 * space: build time from LMDB (what a restart pays), bytes per item, the candidate scans (exact SID, SID prefixes of
 * each length, Hamming-1) per call from the index and from LMDB, and what following writes costs (1,000-item
 * re-upserts that change every SID, with and without the index tracking the key space; the batches that fold the
 * delta into the main run, in place or, for a large index, on the fold thread, are reported apart).
 *
 *   node --import tsx bench/posting-index.bench.ts [--items 1000000] [--levels 3] [--codebook 256] [--queries 2000]
 *
 * The catalog is filled through the store layer (Catalog.upsertBatch) with random SIDs and 4-d vectors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededUniform } from '../src/eval/synthetic.ts';
import { LivePostings } from '../src/service/live-postings.ts';
import type { CandidateSource } from '../src/service/candidates.ts';
import { Catalog } from '../src/store/catalog.ts';
import { benchArgs, latencySummary, markdownTable } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '1000000' },
  levels: { type: 'string', default: '3' },
  codebook: { type: 'string', default: '256' },
  queries: { type: 'string', default: '2000' },
  batches: { type: 'string', default: '40' },
});
const N = Number(args.items);
const L = Number(args.levels);
const K = Number(args.codebook);
const Q = Number(args.queries);
const BATCHES = Number(args.batches);
const MODEL = 1;
const silent = { info: () => {}, warn: (m: string) => console.warn(m) };

const root = mkdtempSync(join(tmpdir(), 'sidx-postings-bench-'));
const catalog = Catalog.open(join(root, 'catalog'));
const r = seededUniform(1);
const sid = () => Int32Array.from({ length: L }, () => Math.floor(r() * K));
const item = (i: number) => ({ id: `i${i}`, codes: sid(), vector: Float32Array.of(r(), r(), r(), r()) });
try {
  let t0 = performance.now();
  for (let i = 0; i < N; i += 20_000) catalog.upsertBatch(MODEL, Array.from({ length: Math.min(20_000, N - i) }, (_, j) => item(i + j)));
  console.log(`filled ${N} items in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const builds: number[] = [];
  let live!: LivePostings;
  for (let b = 0; b < 3; b++) {
    live?.close();
    live = new LivePostings(catalog, silent, true);
    t0 = performance.now();
    live.track(MODEL, L);
    builds.push(performance.now() - t0);
  }
  const index = live.index(MODEL)!;
  const rows: Array<Array<string | number>> = [];
  rows.push(['build from LMDB (ms, best of 3)', Math.min(...builds), '', '']);
  rows.push(['bytes per item', index.bytes / index.count, '', '']);

  // Queries: SIDs of existing items, so every scan finds something.
  const keys = catalog.spaces.keysAfter(0n, Q);
  const sids = Array.from(keys, (k) => catalog.getByKey(k)!.codes);
  const time = (source: CandidateSource, scan: (s: CandidateSource, q: Int32Array) => unknown) => {
    const per: number[] = [];
    for (const q of sids) {
      const s = performance.now();
      scan(source, q);
      per.push((performance.now() - s) * 1000);
    }
    return latencySummary(per);
  };
  const scans: Array<[string, (s: CandidateSource, q: Int32Array) => unknown]> = [
    ['exact SID, limit 1000', (s, q) => s.exact(MODEL, q, 1000)],
    ...Array.from({ length: L - 1 }, (_, p): [string, (s: CandidateSource, q: Int32Array) => unknown] =>
      [`prefix of ${p + 1}, limit 1000`, (s, q) => s.prefix(MODEL, q.subarray(0, p + 1), 1000)]),
    ['hamming1, limit 4000', (s, q) => s.hamming1(MODEL, q, 4000)],
  ];
  for (const [name, scan] of scans) {
    time(index, scan); // warm-up
    time(catalog, scan);
    const mem = time(index, scan);
    const lmdb = time(catalog, scan);
    rows.push([`${name}: µs per call p50 (mean)`, `${mem.p50.toFixed(2)} (${mem.mean.toFixed(2)})`, `${lmdb.p50.toFixed(2)} (${lmdb.mean.toFixed(2)})`, (lmdb.mean / mem.mean).toFixed(1)]);
  }

  // Writes: re-upserts of 1,000 items that change every SID; the time the index takes to apply each committed batch.
  const dedupe = (items: ReturnType<typeof item>[]) => [...new Map(items.map((it) => [it.id, it])).values()];
  const apply = live.apply.bind(live);
  const plain: number[] = [];
  const folds: number[] = [];
  const started: number[] = [];
  const onThread: number[] = [];
  const commits: number[] = [];
  live.apply = (changes) => {
    const before = index.compactions;
    const out = index.folding;
    const s = performance.now();
    apply(changes);
    const ms = performance.now() - s;
    if (index.compactions > before) folds.push(ms);
    else if (out === null && index.folding !== null) started.push(ms);
    else plain.push(ms);
  };
  for (let b = 0; b < BATCHES; b++) {
    const s = performance.now();
    catalog.upsertBatch(MODEL, dedupe(Array.from({ length: 1000 }, () => item(Math.floor(r() * N)))));
    commits.push(performance.now() - s);
    const folding = index.folding;
    if (folding) { // on the fold thread (a large index): its wall time until the folded run is swapped in
      const t = performance.now();
      await folding;
      onThread.push(performance.now() - t);
    }
  }
  const list = (xs: number[]) => xs.map((f) => f.toFixed(1)).join(', ') || 'none';
  rows.push(['1,000-item SID-changing upsert: index apply ms p50 (max) / whole upsertBatch p50', `${latencySummary(plain).p50.toFixed(2)} (${latencySummary(plain).max.toFixed(2)})`, latencySummary(commits).p50.toFixed(1), '']);
  rows.push(['  applies that folded delta into main in place (ms)', list(folds), '', '']);
  rows.push(['  applies that started a fold on the fold thread (ms); its wall time to the swap', `${list(started)}; ${list(onThread)}`, '', '']);
  console.log(`\n${N} items, ${L} levels x ${K} codes, ${Q} queries\n`);
  console.log(markdownTable(['measure', 'index', 'LMDB', 'LMDB / index'], rows));
  await live.close();
} finally {
  await catalog.close();
  rmSync(root, { recursive: true, force: true });
}
