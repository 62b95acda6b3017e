/**
 * How well a model bundle's SIDs generalise to `sidx bench`'s synthetic catalog, fast: a prefix of the bench's
 * catalog (clusteredEmbeddings, seed 1, 1024 clusters, noise 0.6 around the scientific text embeddings when the
 * shared data is there) and its queries (seed 1 + 1,000,003), exact top-k by FAISS Flat, then sidx's own retrieve
 * path (SidxService.retrieveEach, which answers as /v1/retrieve does) per expansion with rerank. Reports the share
 * of the exact top-k found (recall@k), mean candidates, the catalog's SID collision rate, and how far the exact top-k
 * items' SIDs are from the query's own (`sidDistance`: the share at each Hamming distance, and at distance 1 by the
 * level that differs): what exact-SID and Hamming-1 candidates can reach at best.
 *
 *   node --import tsx bench/generalise.bench.ts --model models/default [--items 20000] [--queries 300]
 *     [--max-candidates 1000] [--expand beam,hamming1,auto] [--beam-width 128] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { recallAtK } from '../src/bench/baselines.ts';
import { loadConfig } from '../src/config.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import type { ExpandMode } from '../src/service/types.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { benchArgs, proxyCatalog } from './lib.ts';

const args = benchArgs({
  model: { type: 'string', default: 'models/default' },
  items: { type: 'string', default: '20000' },
  queries: { type: 'string', default: '300' },
  k: { type: 'string', default: '10' },
  'max-candidates': { type: 'string', default: '1000' },
  'beam-width': { type: 'string' },
  expand: { type: 'string', default: 'beam,hamming1,auto' },
  seed: { type: 'string', default: '1' },
  json: { type: 'string' },
});
const n = Number(args.items);
const q = Number(args.queries);
const k = Number(args.k);
const seed = Number(args.seed);
const maxCandidates = Number(args['max-candidates']);
const bundle = await loadBundle(resolve(args.model!));
const m = bundle.manifest;
const dim = m.inputDim;
const { items, queries, truth } = await proxyCatalog({ n, q, dim, seed, k, metric: m.metric });

const dataDir = mkdtempSync(join(tmpdir(), 'sidx-generalise-'));
const config = loadConfig({
  storage: { dataDir, checkpointEvery: 1e9 },
  model: { dir: bundle.dir },
  limits: { maxBatch: 1000, maxCandidates: Math.max(n, maxCandidates), defaultMaxCandidates: maxCandidates },
  encoder: { workers: 0, intraOpThreads: 1 },
}, {});
const service = await SidxService.open(config, { info: () => {}, warn: (msg: string) => console.error(`warn: ${msg}`) });
const result: Record<string, unknown> = { model: m.id, dir: args.model, items: n, queries: q, k, maxCandidates };
try {
  const sids = new Set<string>();
  const L = m.levels;
  const itemCodes = new Int32Array(n * L);
  for (let start = 0; start < n; start += 1000) {
    const end = Math.min(n, start + 1000);
    const res = await service.upsert(Array.from({ length: end - start }, (_, j) => ({
      id: String(start + j), vector: items.subarray((start + j) * dim, (start + j + 1) * dim),
    })));
    res.items.forEach((it, j) => {
      sids.add(it.sid.join(','));
      itemCodes.set(it.sid, (start + j) * L);
    });
  }
  result.collisionRate = 1 - sids.size / n;
  const queryCodes = (await service.encode(queries, q)).codes;
  const atDistance = new Array<number>(L + 1).fill(0);
  const d1AtLevel = new Array<number>(L).fill(0);
  for (let i = 0; i < q * k; i++) {
    const row = Number(truth[i]);
    const differ = Array.from({ length: L }, (_, l) => l).filter((l) => queryCodes[Math.floor(i / k) * L + l] !== itemCodes[row * L + l]);
    atDistance[differ.length]!++;
    if (differ.length === 1) d1AtLevel[differ[0]!]!++;
  }
  result.sidDistance = { share: atDistance.map((c) => c / (q * k)), distance1ByLevel: d1AtLevel.map((c) => c / (q * k)) };
  for (const expand of args.expand!.split(',') as ExpandMode[]) {
    const found = new BigInt64Array(q * k).fill(-1n);
    let candidates = 0;
    const t0 = performance.now();
    await service.retrieveEach({
      embeddings: queries, n: q, expand,
      ...(expand === 'beam' && args['beam-width'] ? { beamWidth: Number(args['beam-width']) } : {}),
      variants: [{ k, maxCandidates, rerank: true }],
    }, (i, hits, directory) => {
      const hit = hits[0]!;
      hit.rows.forEach((r, j) => { found[i * k + j] = BigInt(directory.ids[r]!); });
      candidates += hit.candidates.total;
    });
    result[expand] = { recall: recallAtK(found, truth, q, k), meanCandidates: candidates / q, seconds: (performance.now() - t0) / 1000 };
  }
} finally {
  await service.close();
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
