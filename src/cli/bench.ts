/**
 * `sidx bench`: speed figures on seeded synthetic catalogs, each beside a baseline measured in the same run
 * (ratios, never absolute thresholds). The service runs as a real `sidx serve` child process; the load generator
 * (autocannon), the FAISS baselines and the PyTorch baseline run in or from this process. Progress on stderr.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { clusteredEmbeddings } from '../eval/synthetic.ts';
import { annBaseline, exactBaseline } from '../bench/baselines.ts';
import { benchEncode } from '../bench/encode.ts';
import { retrieveBodies, retrievePass, upsertAll } from '../bench/http.ts';
import { runLoad } from '../bench/load.ts';
import { renderMarkdown, reportJson, sectionKeyOf, writeMarkdownSection, type BenchReport, type CatalogBench } from '../bench/report.ts';
import { startBenchServer } from '../bench/server.ts';
import { readNpy } from '../io/npy.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { loadFaissBinding } from '../vector/binding.ts';
import { parseFlags, UsageError } from './args.ts';

export const benchUsage = `Usage: sidx bench [--sizes 100000[,1000000,...]] [--items N] [--queries 500] [--concurrency 1,8,64]
                  [--duration 10] [--model DIR] [--out bench.json] [--markdown FILE] [--k 10] [--expand auto]
                  [--max-candidates N] [--beam-width N]
                  [--upsert-batch 1000] [--upsert-concurrency 2] [--workers 1] [--hnsw-max 1000000]
                  [--encode-batches 1,16,64,256,1024] [--encode-seconds 2] [--encode-threads N] [--skip-encode] [--python PATH]
                  [--seed 1] [--work-dir DIR] [--keep]
       sidx bench --render bench.json [--markdown FILE]

Speed of encode, batch upsert and /v1/retrieve (over HTTP, autocannon) on seeded synthetic clustered catalogs,
each beside a baseline from the same run: PyTorch CPU for encode (when a Python with torch is found), exact FAISS
Flat and FAISS HNSW32 (the project's addon, in-process) for retrieval, recall@k against exact search.

  --sizes            catalog sizes, comma-separated, each at most 2,000,000 (--items N is --sizes N); default 100000
  --queries          query embeddings (same distribution, not in the catalog); default 500
  --concurrency      autocannon connections per load run; default 1,8,64
  --duration         seconds per load run, and the budget for single-query FAISS timings; default 10
  --model            model bundle served (default models/default)
  --out              write bench.json here
  --markdown         write the Markdown report into FILE between "<!-- sidx bench: begin sizes=... -->" and the
                     matching end marker (replaced when present, appended when not), e.g. docs/benchmarks.md;
                     without it the Markdown goes to stdout
  --encode-threads   ORT intra-op threads and torch threads in the encode comparison (default: all cores)
  --expand, --max-candidates, --beam-width
                     passed to every /v1/retrieve request (defaults: the server's)
  --hnsw-max         skip the HNSW baseline above this many items (its build is slow on few cores)
  --python           Python with torch for the encode baseline (default: /usr/bin/python3, then python3)
  --work-dir         where catalogs are written (default: a temp dir, removed unless --keep)
  --render           no run: the Markdown of an earlier bench.json

Items cluster around the real scientific text embeddings when ../shared/data is there and the model is 512-d (so
a model trained on them sees familiar directions), else around 1024 random centres. Memory: about 3 x 2 KiB per
512-d item across this process and the server (~6 GiB at 1M, ~12 GiB at 2M).`;

const MAX_ITEMS = 2_000_000;

function intList(text: string | undefined, flag: string, min: number, max: number): number[] {
  const parts = (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new UsageError(`--${flag} needs at least one value`);
  return parts.map((p) => {
    const n = Number(p.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: ${JSON.stringify(p)} is not an integer in ${min}..${max}`);
    return n;
  });
}

function intFlagIn(text: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  return text === undefined ? dflt : intList(text, flag, min, max)[0]!;
}

export async function benchCommand(argv: string[]): Promise<number> {
  const { values: v } = parseFlags(argv, {
    sizes: { type: 'string' }, items: { type: 'string' }, queries: { type: 'string' }, concurrency: { type: 'string' },
    duration: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, markdown: { type: 'string' },
    k: { type: 'string' }, expand: { type: 'string' }, 'max-candidates': { type: 'string' }, 'beam-width': { type: 'string' }, 'upsert-batch': { type: 'string' }, 'upsert-concurrency': { type: 'string' },
    workers: { type: 'string' }, 'hnsw-max': { type: 'string' }, 'encode-batches': { type: 'string' },
    'encode-seconds': { type: 'string' }, 'encode-threads': { type: 'string' }, 'skip-encode': { type: 'boolean' }, python: { type: 'string' }, seed: { type: 'string' },
    'work-dir': { type: 'string' }, keep: { type: 'boolean' }, render: { type: 'string' },
  }, benchUsage);
  if (v.help) {
    console.log(benchUsage);
    return 0;
  }
  if (v.render) {
    const report = JSON.parse(readFileSync(resolve(v.render), 'utf8')) as BenchReport;
    const markdown = renderMarkdown(report);
    if (v.markdown) writeMarkdownSection(resolve(v.markdown), sectionKeyOf(report), markdown);
    else process.stdout.write(markdown);
    return 0;
  }
  if (v.sizes !== undefined && v.items !== undefined) throw new UsageError('give --sizes or --items, not both');
  const sizes = intList(v.sizes ?? v.items ?? '100000', v.items !== undefined ? 'items' : 'sizes', 100, MAX_ITEMS);
  const Q = intFlagIn(v.queries, 'queries', 500, 1, 100_000);
  const concurrency = intList(v.concurrency ?? '1,8,64', 'concurrency', 1, 4096);
  const duration = intFlagIn(v.duration, 'duration', 10, 1, 3600);
  const k = intFlagIn(v.k, 'k', 10, 1, 1000);
  const upsertBatch = intFlagIn(v['upsert-batch'], 'upsert-batch', 1000, 1, 100_000);
  const upsertConcurrency = intFlagIn(v['upsert-concurrency'], 'upsert-concurrency', 2, 1, 64);
  const workers = intFlagIn(v.workers, 'workers', 1, 1, 64);
  const hnswMax = intFlagIn(v['hnsw-max'], 'hnsw-max', 1_000_000, 0, MAX_ITEMS);
  const encodeBatches = intList(v['encode-batches'] ?? '1,16,64,256,1024', 'encode-batches', 1, 65_536);
  const encodeSeconds = intFlagIn(v['encode-seconds'], 'encode-seconds', 2, 1, 600);
  const encodeThreads = intFlagIn(v['encode-threads'], 'encode-threads', availableParallelism(), 1, 256);
  const seed = intFlagIn(v.seed, 'seed', 1, 0, 2 ** 31 - 1);
  const expand = v.expand ?? 'auto';
  const retrieveOptions: Record<string, unknown> = { k, expand };
  if (v['max-candidates'] !== undefined) retrieveOptions.maxCandidates = intFlagIn(v['max-candidates'], 'max-candidates', 0, 1, 10_000_000);
  if (v['beam-width'] !== undefined) retrieveOptions.beamWidth = intFlagIn(v['beam-width'], 'beam-width', 0, 1, 4096);
  const modelDir = resolve(v.model ?? 'models/default');
  if (!existsSync(join(modelDir, 'model.json'))) throw new UsageError(`no model bundle at ${modelDir} (give --model DIR)`);

  const t0 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${msg}\n`);
  const bundle = await loadBundle(modelDir);
  const m = bundle.manifest;
  const dim = m.inputDim;
  const shared = resolve('../shared/data/scientific/text_emb.npy');
  const centres = existsSync(shared) && dim === 512 ? (await readNpy(shared)).data : undefined;
  const data = centres ? `synthetic, clustered around the ${centres.length / dim} scientific text embeddings (noise 0.6, L2-normalised)` : 'synthetic, 1024 random clusters (noise 0.6, L2-normalised)';

  const report: BenchReport = {
    version: 1,
    startedAt: new Date().toISOString(),
    command: `sidx bench ${argv.join(' ')}`.trim(),
    machine: {
      cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 2 ** 30, node: process.version,
      faiss: loadFaissBinding().faissVersion, loadAverage: { start: loadavg()[0]!, end: NaN },
    },
    model: { id: m.id, method: m.method, dim, levels: m.levels, codebookSizes: [...m.codebookSizes], dir: modelDir },
    data,
    catalogs: [],
  };

  const maxN = Math.max(...sizes);
  progress(`generating ${maxN.toLocaleString('en-US')} items + ${Q} queries (${dim}-d, seed ${seed})`);
  const tg = performance.now();
  // With fixed centres, a prefix of a larger catalog is a smaller catalog of the same distribution.
  let items: Float32Array | undefined = clusteredEmbeddings({ n: maxN, dim, seed, centres, clusters: 1024, noise: 0.6 });
  const queries = clusteredEmbeddings({ n: Q, dim, seed: seed + 1_000_003, centres, clusters: 1024, noise: 0.6 });
  const generateSeconds = (performance.now() - tg) / 1000;

  const workRoot = v['work-dir'] ? resolve(v['work-dir']) : mkdtempSync(join(tmpdir(), 'sidx-bench-'));
  mkdirSync(workRoot, { recursive: true });
  try {
    if (!v['skip-encode']) {
      report.encode = await benchEncode(bundle, items, Math.min(maxN, 20_000), {
        batches: encodeBatches, threads: encodeThreads, minSeconds: encodeSeconds,
        pythons: v.python ? [v.python] : ['/usr/bin/python3', 'python3'], workDir: workRoot, progress,
      });
    }
    for (const n of sizes) {
      const dataDir = join(workRoot, `catalog-${n}`);
      rmSync(dataDir, { recursive: true, force: true });
      progress(`${n.toLocaleString('en-US')} items: starting sidx serve (data in ${dataDir})`);
      let server = await startBenchServer({ dataDir, modelDir, workers, env: { SIDX__LIMITS__MAX_BATCH: String(Math.max(1000, upsertBatch)) } });
      // A failed run must not leave a server behind.
      const killOnExit = () => server.child.kill('SIGKILL');
      process.once('exit', killOnExit);
      const serverStartMs = server.startMs;
      const afterStart = server.memory();
      let lastShown = 0;
      const upsert = await upsertAll(server.url, items, n, dim, upsertBatch, upsertConcurrency, (done) => {
        if (done - lastShown >= Math.max(upsertBatch, n / 20) || done === n) {
          lastShown = done;
          progress(`upsert ${done.toLocaleString('en-US')} / ${n.toLocaleString('en-US')}`);
        }
      });
      const ready = await server.readiness();
      if (ready.items !== n || ready.vectors !== n) throw new Error(`after the upserts /readyz says ${JSON.stringify(ready)}, expected ${n} items and vectors`);
      const afterUpsert = server.memory();

      progress('exact FAISS Flat: ground truth and single-query timings');
      const baseInput = { items, n, dim, metric: m.metric, queries, q: Q, k, budgetMs: duration * 1000 };
      const exact = await exactBaseline(baseInput);

      progress(`/v1/retrieve: ${Q} queries, one at a time (recall@${k}, candidates, server timings)`);
      const bodies = retrieveBodies(queries, Q, dim, retrieveOptions);
      const retrieve = await retrievePass(server.url, bodies, exact.truth, k, n);
      const load = [];
      for (const c of concurrency) {
        progress(`/v1/retrieve under load: ${c} connection(s), ${duration} s`);
        load.push(await runLoad({ url: server.url, path: '/v1/retrieve', bodies, connections: c, durationS: duration }));
      }
      const afterLoad = server.memory();
      progress('restart with the catalog on disk');
      await server.stop();
      server = await startBenchServer({ dataDir, modelDir, workers });
      const restartMs = server.startMs;
      await server.stop();
      process.off('exit', killOnExit);

      let hnsw: CatalogBench['hnsw'] = { skipped: `catalog larger than --hnsw-max ${hnswMax}` };
      if (n <= hnswMax) {
        progress('FAISS HNSW32: build and single-query timings');
        hnsw = await annBaseline('HNSW32', baseInput, exact.truth);
      }
      const catalog: CatalogBench = {
        items: n, queries: Q, k, expand: [expand, ...Object.entries(retrieveOptions).filter(([key]) => key !== 'k' && key !== 'expand').map(([key, val]) => `${key} ${val}`)].join(', '), generateSeconds, serverStartMs, upsert,
        memory: { afterStart, afterUpsert, afterLoad, bytesPerItem: (afterUpsert.rssBytes - afterStart.rssBytes) / n, vectorBytes: 4 * dim },
        retrieve, load, exact: exact.result, hnsw, restartMs,
      };
      report.catalogs.push(catalog);
      if (!v.keep) rmSync(dataDir, { recursive: true, force: true });
      progress(`${n.toLocaleString('en-US')} items done: recall@${k} ${retrieve.recall.toFixed(3)}, c=1 ${load[0]?.qps.toFixed(0)} QPS`);
    }
  } finally {
    items = undefined;
    if (!v.keep && !v['work-dir']) rmSync(workRoot, { recursive: true, force: true });
  }
  report.machine.loadAverage.end = loadavg()[0]!;
  if (v.out) writeFileSync(resolve(v.out), reportJson(report));
  const markdown = renderMarkdown(report);
  if (v.markdown) writeMarkdownSection(resolve(v.markdown), sectionKeyOf(report), markdown);
  else process.stdout.write(markdown);
  progress(`done${v.out ? `: ${v.out}` : ''}${v.markdown ? `, ${v.markdown}` : ''}`);
  return 0;
}
