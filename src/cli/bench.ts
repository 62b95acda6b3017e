/**
 * `sidx bench`: speed figures on seeded synthetic catalogs, each beside peers measured in the same run (ratios,
 * never absolute thresholds): sidx as a real `sidx serve` child process, an HNSW service (usearch behind Fastify)
 * and a bare Fastify route as child processes too, the same bodies through autocannon, one system at a time.
 * src/bench holds the machinery; this file parses the flags and assembles the report. Progress on stderr.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { benchEncode } from '../bench/encode.ts';
import { renderMarkdown } from '../bench/render.ts';
import { reportJson, sectionKeyOf, writeMarkdownSection, type BenchReport } from '../bench/report.ts';
import { benchCatalog } from '../bench/run.ts';
import { syntheticCatalog } from '../bench/synthetic-catalog.ts';
import { encodeBenchBundle, encodeBenchRows, FORGE_SHAPE } from '../bench/vae-bundle.ts';
import { loadConfig } from '../config.ts';
import { repoPath } from '../paths.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { loadFaissBinding } from '../vector/binding.ts';
import { parseFlags, UsageError } from './args.ts';

export const benchUsage = `Usage: sidx bench [--sizes 100000[,1000000,...]] [--items N] [--queries 500] [--concurrency 1,8,32]
                  [--duration 10] [--rounds 1] [--model DIR] [--out bench.json] [--markdown FILE] [--k 10]
                  [--expand MODE] [--max-candidates N] [--beam-width N] [--sids-beam 32] [--batch 32]
                  [--upsert-batch 1000] [--upsert-concurrency 2] [--workers N] [--hnsw-max 1000000]
                  [--hnsw-connectivity 16] [--hnsw-add-threads 1] [--skip-bulk-index] [--reindex-to DIR] [--baseline earlier.json]
                  [--encode-batches 1,16,64,256,1024] [--encode-seconds 2] [--encode-threads N] [--encode-model served|forge]
                  [--skip-encode] [--python PATH]
                  [--seed 1] [--work-dir DIR] [--keep]
       sidx bench --render bench.json [--markdown FILE]

Speed of /v1/retrieve, ingest and bulk load on seeded synthetic clustered catalogs, beside peers run the same way
in the same run: sidx (\`sidx serve\`), an HNSW service (usearch in a small Fastify server: ingests the same
batches, its search expansion ef raised until its recall@k reaches sidx's) and a bare Fastify route that parses
the same body, each its own child process on loopback, under the same autocannon load one at a time. Two sidx
modes: the default expansion (embedding + k), and retrieval by generated SIDs (a beam of --sids-beam SIDs per
body from sidx's own beam, rerank false); with --batch, both modes again through POST /v1/retrieve/batch. Also:
recall@k against exact FAISS Flat, the phase breakdown from GET /metrics, restart to ready, server RSS, \`sidx
index\` items/s, the encode comparison with PyTorch, and a table of issue 10's targets as ratios.

  --sizes            catalog sizes, comma-separated, each at most 5,000,000 (--items N is --sizes N); default 100000
  --queries          query embeddings (same distribution, not in the catalog); default 500
  --concurrency      autocannon connections per load run; default 1,8,32
  --duration         seconds per load run, and the budget for single-query FAISS timings; default 10
  --rounds           load rounds; a round measures each connection count in turn and, at each, every system back
                     to back (sidx beside the HNSW peer), in reversed order every other round (ABBA); default 1
  --model            model bundle served (default models/default)
  --out              write bench.json here
  --markdown         write the Markdown report into FILE between "<!-- sidx bench: begin KEY -->" and the
                     matching end marker (replaced when present, appended when not), e.g. docs/benchmarks.md;
                     KEY names the sizes and the model. Without it the Markdown goes to stdout
  --expand, --max-candidates, --beam-width
                     added to every default /v1/retrieve body (default: none, the server's defaults)
  --sids-beam        SIDs per body in the sids mode (default 32)
  --batch            also load POST /v1/retrieve/batch with this many of the same queries per request, in both
                     modes, and the bare route with those batch bodies; reported as queries/s (default 0: not run)
  --workers          the server's encoder workers (default: its own, SIDX__ENCODER__WORKERS or encoder.workers);
                     also the encode comparison's pool (default there: 1 worker with --encode-threads threads)
  --hnsw-max         skip the HNSW peer above this many items
  --hnsw-connectivity  the peer's HNSW connectivity (M; default 16)
  --hnsw-add-threads   threads the peer adds each batch with (default 1: the same batches, sent one at a time, build
                     the same graph, so the ef tuned to sidx's recall repeats from run to run; 0 = every core: its
                     ingest about 2x faster, its graph and tuned ef different each run)
  --skip-bulk-index  do not time \`sidx index\`
  --reindex-to       after the restart, re-index the catalog to this bundle (a path under the model registry,
                     e.g. rqkmeans-3x256) and compare /healthz and /v1/retrieve latency during its drop phase with
                     the same requests outside it (issue 14's target: p99 at most 2x)
  --baseline         an earlier bench.json: the targets compare recall with it (same size)
  --encode-threads   ORT intra-op threads and torch threads in the encode comparison (default: all cores)
  --encode-model     the model of the encode comparison: served (default, --model) or forge: an RQ-VAE of FORGE's
                     shape (512-256-256-64, 3 x 8192, seeded weights, built in seconds; src/bench/vae-bundle.ts) on
                     synthetic 512-d rows, at --encode-batches (default 1,64,1024 for forge)
  --python           Python with torch for the encode baseline (default: /usr/bin/python3, then python3)
  --work-dir         where catalogs are written (default: a temp dir, removed unless --keep)
  --render           no run: the Markdown of an earlier bench.json (version 2)

Items cluster around the real scientific text embeddings when ../shared/data (or $SIDX_SHARED_DATA) is there and the model is 512-d (so
a model trained on them sees familiar directions), else around 1024 random centres. Memory: about 4 x 2 KiB per
512-d item across this process, the server and the HNSW peer (~8 GiB at 1M); the exact baseline searches catalogs over
1M items in flat indexes of 1M rows one after another. With vectors.storage sq8 or pq (SIDX__VECTORS__STORAGE), the
catalog is also restarted as f32 and the same queries' recall compared (the compressed option's loss).`;

const MAX_ITEMS = 5_000_000;
const FORGE_LABEL = `${FORGE_SHAPE.inputDim}-${FORGE_SHAPE.hidden.join('-')}-${FORGE_SHAPE.latentDim}, `
  + `${FORGE_SHAPE.codebookSizes.length} x ${FORGE_SHAPE.codebookSizes[0]}`;

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
    workers: { type: 'string' }, 'hnsw-max': { type: 'string' }, 'encode-batches': { type: 'string' }, rounds: { type: 'string' },
    'sids-beam': { type: 'string' }, batch: { type: 'string' }, 'hnsw-connectivity': { type: 'string' }, 'hnsw-add-threads': { type: 'string' }, 'skip-bulk-index': { type: 'boolean' }, 'reindex-to': { type: 'string' }, baseline: { type: 'string' },
    'encode-seconds': { type: 'string' }, 'encode-threads': { type: 'string' }, 'encode-model': { type: 'string' }, 'skip-encode': { type: 'boolean' }, python: { type: 'string' }, seed: { type: 'string' },
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
  const concurrency = intList(v.concurrency ?? '1,8,32', 'concurrency', 1, 4096);
  const rounds = intFlagIn(v.rounds, 'rounds', 1, 1, 10);
  const sidsBeam = intFlagIn(v['sids-beam'], 'sids-beam', 32, 1, 4096);
  const batch = intFlagIn(v.batch, 'batch', 0, 0, 1000);
  const connectivity = intFlagIn(v['hnsw-connectivity'], 'hnsw-connectivity', 16, 2, 256);
  const addThreads = intFlagIn(v['hnsw-add-threads'], 'hnsw-add-threads', 1, 0, 256);
  const duration = intFlagIn(v.duration, 'duration', 10, 1, 3600);
  const k = intFlagIn(v.k, 'k', 10, 1, 1000);
  const upsertBatch = intFlagIn(v['upsert-batch'], 'upsert-batch', 1000, 1, 100_000);
  const upsertConcurrency = intFlagIn(v['upsert-concurrency'], 'upsert-concurrency', 2, 1, 64);
  // Unset: the server's own default (encoder.workers); 0 is its "auto".
  const workers = v.workers === undefined ? undefined : intFlagIn(v.workers, 'workers', 0, 0, 64);
  const hnswMax = intFlagIn(v['hnsw-max'], 'hnsw-max', 1_000_000, 0, MAX_ITEMS);
  const encodeModel = v['encode-model'] ?? 'served';
  if (encodeModel !== 'served' && encodeModel !== 'forge') throw new UsageError(`--encode-model must be served or forge, got ${JSON.stringify(encodeModel)}`);
  if (v['encode-model'] !== undefined && v['skip-encode']) throw new UsageError('--encode-model needs the encode comparison: drop --skip-encode');
  const encodeBatches = intList(v['encode-batches'] ?? (encodeModel === 'forge' ? '1,64,1024' : '1,16,64,256,1024'), 'encode-batches', 1, 65_536);
  const encodeSeconds = intFlagIn(v['encode-seconds'], 'encode-seconds', 2, 1, 600);
  const encodeThreads = intFlagIn(v['encode-threads'], 'encode-threads', availableParallelism(), 1, 256);
  const seed = intFlagIn(v.seed, 'seed', 1, 0, 2 ** 31 - 1);
  const retrieveOptions: Record<string, unknown> = {};
  if (v.expand !== undefined) retrieveOptions.expand = v.expand;
  if (v['max-candidates'] !== undefined) retrieveOptions.maxCandidates = intFlagIn(v['max-candidates'], 'max-candidates', 0, 1, 10_000_000);
  if (v['beam-width'] !== undefined) retrieveOptions.beamWidth = intFlagIn(v['beam-width'], 'beam-width', 0, 1, 4096);
  const modelDir = v.model === undefined ? repoPath('models/default') : resolve(v.model);
  if (!existsSync(join(modelDir, 'model.json'))) throw new UsageError(`no model bundle at ${modelDir} (give --model DIR)`);

  const t0 = performance.now();
  const progress = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${msg}\n`);
  const bundle = await loadBundle(modelDir);
  const m = bundle.manifest;
  const dim = m.inputDim;

  const maxN = Math.max(...sizes);
  progress(`generating ${maxN.toLocaleString('en-US')} items + ${Q} queries (${dim}-d, seed ${seed})`);
  const tg = performance.now();
  const generated = await syntheticCatalog({ n: maxN, q: Q, dim, seed });
  let items: Float32Array | undefined = generated.items;
  const queries = generated.queries;
  const generateSeconds = (performance.now() - tg) / 1000;

  const baselineFile = v.baseline ? resolve(v.baseline) : undefined;
  const baselineReport = baselineFile ? JSON.parse(readFileSync(baselineFile, 'utf8')) as BenchReport : undefined;
  const report: BenchReport = {
    version: 2,
    startedAt: new Date().toISOString(),
    command: `sidx bench ${argv.join(' ')}`.trim(),
    machine: {
      cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 2 ** 30, node: process.version,
      faiss: loadFaissBinding().faissVersion, loadAverage: { start: loadavg()[0]!, end: NaN },
    },
    model: { id: m.id, method: m.method, metric: m.metric, dim, levels: m.levels, codebookSizes: [...m.codebookSizes], dir: modelDir },
    data: generated.data,
    catalogs: [],
    ...(baselineReport && baselineFile ? {
      baseline: {
        file: v.baseline!,
        recall: (baselineReport.catalogs ?? []).flatMap((c) => [
          { items: c.items, system: 'sidx' as const, recall: c.retrieve.recall },
          ...(c.sids ? [{ items: c.items, system: 'sidx-sids' as const, recall: c.sids.retrieve.recall }] : []),
        ]),
      },
    } : {}),
  };

  const workRoot = v['work-dir'] ? resolve(v['work-dir']) : mkdtempSync(join(tmpdir(), 'sidx-bench-'));
  mkdirSync(workRoot, { recursive: true });
  try {
    if (!v['skip-encode']) {
      const options = {
        batches: encodeBatches, threads: encodeThreads, minSeconds: encodeSeconds,
        pythons: v.python ? [v.python] : ['/usr/bin/python3', 'python3'], workDir: workRoot, progress,
        // --workers: the pool's workers here too (0: auto, one per core, at most 4); unset: one worker, all threads.
        ...(workers === undefined ? {} : { workers: workers === 0 ? Math.min(4, availableParallelism()) : workers }),
      };
      const rows = Math.min(maxN, 20_000);
      if (encodeModel === 'forge') {
        progress(`encode: building an RQ-VAE of FORGE's shape (${FORGE_LABEL}, seeded weights)`);
        const forge = await encodeBenchBundle(join(workRoot, 'forge-model'));
        report.encode = await benchEncode(forge, encodeBenchRows(rows, FORGE_SHAPE.inputDim), rows, { ...options, label: `FORGE shape: RQ-VAE ${FORGE_LABEL}, seeded weights` });
      } else {
        report.encode = await benchEncode(bundle, items, rows, options);
      }
    }
    for (const n of sizes) {
      const catalog = await benchCatalog({
        n, items, dim, metric: m.metric, queries, q: Q, k, retrieveOptions, modelDir, workDir: workRoot, concurrency, durationS: duration,
        rounds, upsertBatch, upsertConcurrency, workers, sidsBeamWidth: sidsBeam, batch, connectivity, addThreads, bodyLimitBytes: loadConfig({}).server.bodyLimitBytes,
        vectorsStorage: loadConfig({}).vectors.storage,
        hnswMax, bulkIndex: !v['skip-bulk-index'], reindexTo: v['reindex-to'], generateSeconds, progress,
      });
      report.catalogs.push(catalog);
      progress(`${n.toLocaleString('en-US')} items done: recall@${k} ${catalog.retrieve.recall.toFixed(3)}`);
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
