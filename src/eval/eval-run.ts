/**
 * `sidx eval`: retrieval quality of a model bundle's SIDs on a data set, against exact search and an equal-work
 * FAISS IVF-Flat baseline.
 *
 * Protocol: every item is upserted through the service's own code path (SidxService.open + upsert, in process, in
 * a temporary data directory), as the model sees it (L2-normalised when the bundle normalises, else as stored).
 * Each usable test row gives a query (eval-dataset.ts profiles) whose target is the held-out next item. SID rows go
 * through SidxService.retrieveEach, which answers each query as SidxService.retrieve (/v1/retrieve) does, in
 * batches (eval-sid.ts), with k = the largest K and maxCandidates = the candidate budget; rows without rerank keep
 * candidate order. The IVF row's nprobe is the one whose mean number of
 * scored vectors is closest to sid+beam+rerank's mean candidates (sid+hamming1+rerank's without a beam).
 * Curves (Recall@K_min against candidates scored) sweep the budget for the SID rows and nprobe for IVF. A budget
 * sweep takes from the same pass each query's ordered candidate list at the largest budget (rerank off, k = the
 * budget): the candidates at a smaller budget are its prefix (the expansion is deterministic and fills in order),
 * reranked here with the same FAISS scores and tie order as the service. At the main budget the derived row must
 * equal the service's own row (`protocol.sweepCheck`).
 * Progress: `progress` hears where each long phase stands (`sidx eval` draws it on stderr); the SID passes report
 * every PROGRESS_EVERY answered queries (sidPass's onQuery), with no work or allocation per query beyond a counter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { loadConfig } from '../config.ts';
import { SidxError } from '../errors.ts';
import { SidxService } from '../service/sidx-service.ts';
import { DEFAULT_BEAM_WIDTH, type ExpandMode } from '../service/types.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { buildQueries, l2Normalized, type EvalDataset, type QueryProfile } from './eval-dataset.ts';
import {
  closestByWork, defaultNlist, exactRow, ivfSweep, nprobeSweep, SubsetRanker, type FaissEvalInput,
} from './eval-faiss.ts';
import type { EvalRow } from './eval-metrics.ts';
import { SID_METHODS, sidPass } from './eval-sid.ts';
import { EMBEDDING_HITRATE_K, embeddingHitRate, type EmbeddingHitRate } from './embedding-hitrate.ts';

export interface EvalOptions {
  dataset: EvalDataset;
  modelDir: string;
  profile: QueryProfile;
  /** Cut-offs, ascending; the first one is the curves' Recall@K. */
  ks: number[];
  /** Candidate budget of the SID rows as a fraction of the catalog (maxCandidates = max(round(f n), max K)). */
  budget: number;
  beamWidth?: number;
  /** Budget fractions swept for the curves. */
  sweep?: number[];
  /** Evaluate only the first `maxQueries` usable test rows. */
  maxQueries?: number;
  /** Encoder workers for the batched model passes (default: one per core, at most 4: a bulk job's, model-space.ts encoderThreads). */
  workers?: number;
  log?: (msg: string) => void;
  /** Warnings and notes, which do not end the running phase (default: `log`). */
  warn?: (msg: string) => void;
  /** Where the running phase stands (see EvalProgress); absent, nothing is counted. */
  progress?: EvalProgress;
}

/**
 * `done` of `total` `unit`s of `phase` ("sid+beam w=32", 1280, 24772, "queries"); total 0: a phase whose steps
 * are not counted here (its text says what runs). Called when a phase starts, within it (the catalog's upsert
 * batches, every PROGRESS_EVERY queries of a SID pass, and the last) but never per query: keep it cheap. A phase
 * ends with its `log` line.
 */
export type EvalProgress = (phase: string, done: number, total: number, unit: string) => void;

export interface CurvePoint {
  /** Mean candidates scored per query. */
  candidates: number;
  catalogFraction: number;
  recall: number;
  /** What was swept: the budget (maxCandidates) or nprobe. */
  parameter: { maxCandidates: number } | { nprobe: number };
}

export interface EvalReport {
  dataset: string;
  model: string;
  queries: number;
  rows: EvalRow[];
  protocol: Record<string, unknown>;
  /** Recall@K_min vs candidates scored, one curve per method that scores vectors. */
  curves: { method: string; points: CurvePoint[] }[];
  /** FORGE Embedding HitRate over all test rows (embedding-hitrate.ts). */
  embeddingHitRate: EmbeddingHitRate;
}

export const DEFAULT_SWEEP = [0.0025, 0.005, 0.01, 0.02, 0.05, 0.1];
const UPSERT_BATCH = 1000;
/** Queries between two progress reports of a SID pass (a power of two). */
const PROGRESS_EVERY = 128;
const count = (x: number) => x.toLocaleString('en-US');

const EXPANDS: ExpandMode[] = ['none', 'hamming1', 'beam'];

export async function runEval(opts: EvalOptions): Promise<EvalReport> {
  const { dataset: ds, ks } = opts;
  const log = opts.log ?? (() => {});
  const warn = opts.warn ?? log;
  const progress = opts.progress;
  const bundle = await loadBundle(resolve(opts.modelDir));
  const m = bundle.manifest;
  if (m.inputDim !== ds.dim) {
    throw new SidxError('SIDX_ERR_DIMENSION', `model ${m.id} takes ${m.inputDim}-d input, ${ds.embeddingsFile} has ${ds.dim}-d rows: `
      + 'train a model on this data set (sidx train)', { field: 'model' });
  }
  const kMax = Math.max(...ks);
  const n = ds.n;
  const budgetN = Math.min(n, Math.max(Math.round(opts.budget * n), kMax));
  const beamWidth = opts.beamWidth ?? DEFAULT_BEAM_WIDTH;
  const items = m.normalize === 'l2' ? l2Normalized(ds.items, ds.dim) : ds.items;
  const queries = buildQueries(ds, opts.profile, opts.maxQueries);
  const nq = queries.targets.length;
  const started = performance.now();

  progress?.('indexing the catalog', 0, n, 'items');
  const dataDir = mkdtempSync(join(tmpdir(), 'sidx-eval-'));
  const config = loadConfig({
    storage: { dataDir, checkpointEvery: 1e9 },
    model: { dir: bundle.dir },
    limits: { maxBatch: UPSERT_BATCH, maxK: Math.max(kMax, 1000), maxCandidates: Math.max(n, 1), defaultMaxCandidates: budgetN },
    // Single-threaded sessions, one per worker: the batched passes split their rows across the workers.
    encoder: { workers: opts.workers ?? 0, intraOpThreads: 1 },
  }, {});
  const service = await SidxService.open(config, { info: () => {}, warn: (msg: string) => warn(`warn: ${msg}`) }, { encoderUse: 'batch' });
  const rows: EvalRow[] = [];
  const curves: EvalReport['curves'] = [];
  let ivfInfo: Record<string, unknown> = {};
  let hitRate: EmbeddingHitRate | undefined;
  const codes = new Int32Array(n * m.levels);
  const sweepCheck: Record<string, boolean> = {};
  try {
    for (let start = 0; start < n; start += UPSERT_BATCH) {
      const end = Math.min(n, start + UPSERT_BATCH);
      const batch = Array.from({ length: end - start }, (_, j) => ({
        id: String(start + j), vector: items.subarray((start + j) * ds.dim, (start + j + 1) * ds.dim),
      }));
      const res = await service.upsert(batch);
      res.items.forEach((it, j) => codes.set(it.sid, (start + j) * m.levels));
      progress?.('indexing the catalog', end, n, 'items');
    }
    log(`indexed ${n} items with ${m.id}; ${nq} queries (${opts.profile}), budget ${budgetN} candidates`);
    if (m.normalize !== 'l2') {
      // The protocol's profiles are means of L2-normalised rows; this model's items and encoder see rows as stored.
      warn(`note: ${m.id} takes rows as they are (normalize none): the queries (means of L2-normalised history `
        + 'embeddings) are on another scale than its items; an encoder trained on raw rows may place them poorly '
        + '(for embeddings compared by cosine, train with --normalize l2)');
    }
    const hasBeam = bundle.beamPath !== undefined;
    const faissInput: FaissEvalInput = { items, n, dim: ds.dim, metric: m.metric, queries: queries.vectors, targets: queries.targets, ks };
    progress?.(`exact search (FAISS Flat): ${count(nq)} queries over ${count(n)} items`, 0, 0, '');
    const exact = await exactRow(faissInput);
    rows.push(exact);
    log(`exact: Recall@${ks[0]} ${exact.recall[String(ks[0])]!.toFixed(4)}`);

    const point = (row: EvalRow, parameter: CurvePoint['parameter']): CurvePoint => ({
      candidates: row.meanCandidates, catalogFraction: row.catalogFraction, recall: row.recall[String(ks[0])]!, parameter,
    });
    const sweep = (opts.sweep ?? DEFAULT_SWEEP).map((f) => Math.min(n, Math.max(1, Math.round(f * n))));
    const budgets = [...new Set([...sweep, budgetN])].sort((a, b) => a - b);
    const sweepCurves: EvalReport['curves'] = [];
    const ranker = new SubsetRanker(faissInput);
    try {
      for (const expand of EXPANDS) {
        if (expand === 'beam' && !hasBeam) continue;
        const input = { vectors: queries.vectors, targets: queries.targets, dim: ds.dim, n, ks, budgetN, ranker };
        const phase = expand === 'none' ? 'sid' : expand === 'beam' ? `sid+beam w=${beamWidth}` : `sid+${expand}`;
        progress?.(phase, 0, nq, 'queries');
        const onQuery = progress && ((done: number) => {
          if ((done & (PROGRESS_EVERY - 1)) === 0 || done === nq) progress(phase, done, nq, 'queries');
        });
        const pass = await sidPass(service, { ...input, budgets: expand === 'none' ? undefined : budgets },
          { expand, beamWidth: expand === 'beam' ? beamWidth : undefined, onQuery });
        const [plain, reranked] = SID_METHODS.filter((sm) => sm.expand === expand);
        for (const [sm, row] of [[plain!, pass.plain], [reranked!, pass.reranked]] as const) {
          rows.push(row);
          log(`${sm.method}: Recall@${ks[0]} ${row.recall[String(ks[0])]!.toFixed(4)}, ${row.meanCandidates.toFixed(1)} candidates`);
        }
        if (!pass.sweep) continue;
        const points: CurvePoint[] = [];
        pass.sweep.forEach((row, j) => {
          const b = budgets[j]!;
          if (b === budgetN) sweepCheck[reranked!.method] = JSON.stringify(row) === JSON.stringify(pass.reranked);
          if (sweep.includes(b)) points.push(point(row, { maxCandidates: b }));
          log(`  ${reranked!.method} @ ${b}: Recall@${ks[0]} ${row.recall[String(ks[0])]!.toFixed(4)}, ${row.meanCandidates.toFixed(1)} candidates`);
        });
        sweepCurves.push({ method: reranked!.method, points });
      }
    } finally {
      ranker.close();
    }
    curves.push({ method: 'exact', points: [point(exact, { maxCandidates: n })] });
    const sidRerank = rows.find((r) => r.method === 'sid+rerank')!;
    curves.push({ method: 'sid+rerank', points: [point(sidRerank, { maxCandidates: budgetN })] }, ...sweepCurves);
    if (Object.values(sweepCheck).some((ok) => !ok)) warn(`warn: budget sweep differs from the service's rows: ${JSON.stringify(sweepCheck)}`);

    progress?.(`Embedding HitRate: decoding ${count(n)} SIDs, top-${EMBEDDING_HITRATE_K} neighbour searches`, 0, 0, '');
    hitRate = await embeddingHitRate(bundle, codes, items, n, ds.dim, ds.test);
    log(`Embedding HitRate@${hitRate.k}: ${hitRate.decoded.toFixed(4)} on SIDs decoded by ${hitRate.decodedBy}, `
      + `${hitRate.original.toFixed(4)} on the items' own embeddings (${hitRate.rows} rows)`);

    const nlist = defaultNlist(n);
    const nprobes = nprobeSweep(nlist);
    progress?.(`ivf-flat: training IVF${nlist},Flat, then ${nprobes.length} nprobe values x ${count(nq)} queries`, 0, 0, '');
    const ivf = await ivfSweep(faissInput, nlist, nprobes);
    const matchTo = rows.find((r) => r.method === 'sid+beam+rerank') ?? rows.find((r) => r.method === 'sid+hamming1+rerank')!;
    const chosen = closestByWork(ivf, matchTo.meanCandidates);
    rows.push(chosen.row);
    curves.push({ method: 'ivf-flat', points: ivf.map((p) => point(p.row, { nprobe: p.nprobe })) });
    ivfInfo = { factory: `IVF${nlist},Flat`, nlist, nprobe: chosen.nprobe, matchedTo: matchTo.method };
    log(`ivf-flat: nlist ${nlist}, nprobe ${chosen.nprobe}: Recall@${ks[0]} ${chosen.row.recall[String(ks[0])]!.toFixed(4)}, `
      + `${chosen.row.meanCandidates.toFixed(1)} scored`);
  } finally {
    await service.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  return {
    dataset: ds.name,
    model: m.id,
    queries: nq,
    rows,
    protocol: {
      datasetDir: relative(process.cwd(), ds.dir),
      layout: ds.layout,
      embeddings: relative(process.cwd(), ds.embeddingsFile),
      items: n,
      dim: ds.dim,
      profile: opts.profile,
      split: ds.split,
      testRows: ds.test.targets.length,
      skippedRows: queries.skipped,
      ks,
      itemVectors: m.normalize === 'l2' ? 'L2-normalised (the model normalises)' : 'as stored',
      metric: m.metric,
      maxCandidates: budgetN,
      beamWidth: bundle.beamPath ? beamWidth : null,
      beamScore: m.metric === 'ip' && m.method === 'rqkmeans' ? 'partial inner product' : 'squared distance to the codeword sum',
      ivf: ivfInfo,
      sweepCheck,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    },
    curves,
    embeddingHitRate: hitRate!,
  };
}
