/**
 * End-to-end service figures on a synthetic catalog, each beside a baseline measured in the same run:
 * - encode items/s through the worker pool vs one in-process ORT session (the price of the worker hop);
 * - batch upsert items/s (LMDB commit with fsync + FAISS add) vs encode alone;
 * - /v1/retrieve over HTTP on a loopback port, sequential: p50/p95/p99 and recall@10 against exact search,
 *   vs an exact FAISS flat search of the same queries in-process.
 *
 *   node --import tsx bench/service.bench.ts [--items 100000] [--queries 300] [--model models/default]
 *     [--expand auto,beam] [--out FILE]
 * --expand: the /v1/retrieve modes measured (default: auto, and beam when the model ships beam.onnx).
 *
 * Items are clustered around the real scientific text embeddings when ../shared/data is present (so the
 * default model, trained on them, sees familiar directions), otherwise around random centres.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { readNpy } from '../src/io/npy.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import { clusteredEmbeddings } from '../src/eval/synthetic.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { VectorIndex } from '../src/vector/vector-index.ts';
import { benchArgs, latencySummary, markdownTable } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' },
  queries: { type: 'string', default: '300' },
  model: { type: 'string', default: 'models/default' },
  expand: { type: 'string' },
  out: { type: 'string' },
});
const N = Number(args.items);
const Q = Number(args.queries);
const modelDir = resolve(args.model as string);
const silent = { info: () => {}, warn: () => {} };

const bundle = await loadBundle(modelDir);
const dim = bundle.manifest.inputDim;
const expandModes = ((args.expand as string | undefined) ?? (bundle.beamPath === undefined ? 'auto' : 'auto,beam')).split(',');
const shared = resolve('../shared/data/scientific/text_emb.npy');
const centres = existsSync(shared) && dim === 512 ? (await readNpy(shared)).data : undefined;
console.error(`generating ${N} items + ${Q} queries (${dim}-d, centres: ${centres ? 'scientific text embeddings' : 'random'})`);
const items = clusteredEmbeddings({ n: N, dim, seed: 1, centres, noise: 0.6 });
const queries = clusteredEmbeddings({ n: Q, dim, seed: 2, centres, noise: 0.6 });

const dataDir = mkdtempSync(join(tmpdir(), 'sidx-bench-'));
const config = loadConfig({ storage: { dataDir }, model: { dir: modelDir }, limits: { maxBatch: 10_000 } }, {});
const service = await SidxService.open(config, silent);
const results: Record<string, unknown> = { items: N, queries: Q, dim, model: bundle.manifest.id, provider: service.readiness().provider };

try {
  // Encode: pool vs a direct in-process session, same batches.
  const session = await ort.InferenceSession.create(bundle.encoderPath);
  const encodeRows: Array<Array<string | number>> = [];
  for (const batch of [1, 64, 1024]) {
    const rounds = Math.max(1, Math.floor(Math.min(N, 8192) / batch));
    const slice = (r: number) => items.subarray((r * batch) % (N - batch) * dim, ((r * batch) % (N - batch) + batch) * dim);
    let t0 = performance.now();
    for (let r = 0; r < rounds; r++) await service.encode(slice(r), batch);
    const poolRate = (rounds * batch) / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let r = 0; r < rounds; r++) await session.run({ embedding: new ort.Tensor('float32', slice(r), [batch, dim]) });
    const directRate = (rounds * batch) / ((performance.now() - t0) / 1000);
    encodeRows.push([batch, Math.round(poolRate), Math.round(directRate), poolRate / directRate]);
  }
  await session.release();
  results.encode = encodeRows;

  // Upsert in batches of 1000 (encode + one LMDB transaction with fsync + FAISS add).
  const upsertBatch = 1000;
  const t0 = performance.now();
  for (let s = 0; s < N; s += upsertBatch) {
    const n = Math.min(upsertBatch, N - s);
    await service.upsert(Array.from({ length: n }, (_, i) => ({ id: `item-${s + i}`, vector: items.subarray((s + i) * dim, (s + i + 1) * dim) })));
    if ((s / upsertBatch) % 20 === 0) process.stderr.write(`\rupsert ${s + n}/${N}`);
  }
  const upsertSeconds = (performance.now() - t0) / 1000;
  process.stderr.write('\n');
  results.upsert = { batch: upsertBatch, itemsPerSecond: N / upsertSeconds, seconds: upsertSeconds };

  // Exact baseline: FAISS flat over the same catalog, one query at a time.
  const exact = VectorIndex.create({ dim, metric: 'ip' });
  exact.add(items, BigInt64Array.from({ length: N }, (_, i) => BigInt(i)));
  const exactTop: Set<string>[] = [];
  const exactMs: number[] = [];
  for (let q = 0; q < Q; q++) {
    const t = performance.now();
    const r = await exact.search(queries.subarray(q * dim, (q + 1) * dim), 10);
    exactMs.push(performance.now() - t);
    exactTop.push(new Set(Array.from(r.labels, (l) => `item-${l}`)));
  }
  exact.close();

  // /v1/retrieve over HTTP on loopback, once per expand mode.
  const app = await buildApp({ service, config });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const exactLat = latencySummary(exactMs);
  const retrieveRuns: { mode: string; http: ReturnType<typeof latencySummary>; server: ReturnType<typeof latencySummary>; hits: number; candidates: number }[] = [];
  for (const mode of expandModes) {
    const httpMs: number[] = [];
    const serverMs: number[] = [];
    let hits = 0;
    let candidates = 0;
    for (let q = 0; q < Q; q++) {
      const body = JSON.stringify({ embedding: Array.from(queries.subarray(q * dim, (q + 1) * dim)), k: 10, expand: mode });
      const t = performance.now();
      const res = await fetch(`${base}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const json = (await res.json()) as { items: { id: string }[]; candidates: { total: number }; timingsMs: { total: number } };
      if (res.status !== 200) throw new Error(`/v1/retrieve (expand ${mode}) answered ${res.status}: ${JSON.stringify(json)}`);
      httpMs.push(performance.now() - t);
      serverMs.push(json.timingsMs.total);
      candidates += json.candidates.total;
      for (const it of json.items) if (exactTop[q]!.has(it.id)) hits++;
    }
    retrieveRuns.push({ mode, http: latencySummary(httpMs), server: latencySummary(serverMs), hits, candidates });
  }
  await app.close();
  results.retrieve = Object.fromEntries(retrieveRuns.map((r) => [r.mode, {
    http: r.http,
    serverSide: r.server,
    exactFlat: exactLat,
    p50RatioVsExact: r.http.p50 / exactLat.p50,
    recallAt10VsExact: r.hits / (Q * 10),
    meanCandidates: r.candidates / Q,
    catalogFraction: r.candidates / Q / N,
  }]));

  console.log(`\n## sidx service benchmark (${N} items, ${dim}-d, model ${bundle.manifest.id}, ${results.provider})\n`);
  console.log(markdownTable(['encode batch', 'pool items/s', 'direct ORT items/s', 'pool / direct'], encodeRows));
  console.log(`\nupsert: ${Math.round(N / upsertSeconds)} items/s (batches of ${upsertBatch}, ${upsertSeconds.toFixed(1)} s)\n`);
  console.log(markdownTable(['retrieve (k=10, rerank)', 'p50 ms', 'p95 ms', 'p99 ms'], [
    ...retrieveRuns.flatMap((r) => [
      [`sidx /v1/retrieve over HTTP, expand ${r.mode}`, r.http.p50, r.http.p95, r.http.p99],
      ['  of which server-side', r.server.p50, r.server.p95, r.server.p99],
    ]),
    ['FAISS flat exact search, in-process', exactLat.p50, exactLat.p95, exactLat.p99],
  ]));
  for (const r of retrieveRuns) {
    console.log(`\nexpand ${r.mode}: retrieve p50 / exact p50 = ${(r.http.p50 / exactLat.p50).toFixed(3)}; recall@10 vs exact = ${(r.hits / (Q * 10)).toFixed(3)}; `
      + `mean candidates ${(r.candidates / Q).toFixed(0)} (${((100 * r.candidates) / Q / N).toFixed(3)}% of the catalog)`);
  }
  if (args.out) writeFileSync(args.out as string, JSON.stringify(results, null, 2) + '\n');
} finally {
  await service.close();
  rmSync(dataDir, { recursive: true, force: true });
}
