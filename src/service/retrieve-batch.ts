/**
 * Batched retrieval (SidxService.retrieveEach): the per-query steps of SidxService.retrieve for many embeddings,
 * with the same results. The encoder or beam graph runs on blocks of rows (one worker round trip per chunk instead
 * of per query; ORT returns the same codes and scores per row either way), candidates are gathered by the shared
 * `gatherCandidates` from the served key space's posting index (the service's live one, or one built for the pass
 * when storage.postingIndex is lmdb: the catalog's scans, same order), answers are rows of an ItemDirectory, rerank scores them with the service's vector store exactly as retrieve does. Several variants (k, budget, rerank)
 * share one model pass per query. `sidx eval` runs on it; test/service/retrieve-batch.test.ts checks it against
 * SidxService.retrieve query by query.
 */
import { SidxError } from '../errors.ts';
import type { BeamLevel, EncoderPool } from '../tokenizer/encoder-pool.ts';
import { beamRow } from '../tokenizer/worker-protocol.ts';
import type { VectorScorer } from '../vector/vector-store.ts';
import { gatherCandidates, type QueryRanking } from './candidates.ts';
import { CandidateSet } from './candidate-set.ts';
import { beamNormWeight, candidateCounts, candidatesWanted, orderCandidates, resolveExpand } from './retrieve-steps.ts';
import type { ActiveModel } from './model-space.ts';
import { ItemDirectory } from './item-directory.ts';
import { PostingIndex } from './posting-index.ts';
import type { Catalog } from '../store/catalog.ts';
import { DEFAULT_BEAM_WIDTH, type ExpandMode, type MatchKind } from './types.ts';

export interface BatchVariant {
  k: number;
  maxCandidates: number;
  rerank: boolean;
}

export interface BatchRetrieveQuery {
  /** n × inputDim row-major embeddings. */
  embeddings: Float32Array;
  n: number;
  /** Default as in retrieve: 'beam' when the served model ships beam.onnx, else 'auto'. */
  expand?: ExpandMode;
  beamWidth?: number;
  /** Each query is answered once per variant. */
  variants: BatchVariant[];
}

/** One query's answer under one variant: what retrieve's `items` and `candidates` hold. */
export interface BatchHit {
  /** Directory rows of the returned items, best first (id: directory.ids[row], SID: directory.sid(row)). */
  rows: Int32Array;
  /** Rerank scores of the returned items, or null without rerank. */
  scores: Float32Array | null;
  match: MatchKind[];
  candidates: { exact: number; hamming1: number; beam: number; prefix: number; total: number };
}

export type BatchEach = (query: number, hits: BatchHit[], directory: ItemDirectory) => void;

export interface BatchContext {
  model: ActiveModel;
  pool: EncoderPool;
  catalog: Catalog;
  scorer: VectorScorer;
  /** The live posting index of the served key space, when the service keeps one. */
  postings?: PostingIndex;
}

interface Scoring {
  model: ActiveModel;
  scorer: VectorScorer;
  postings: PostingIndex;
  directory: ItemDirectory;
}

/** Rows per model pass; the next block's pass runs while this block's candidates are gathered. */
const BLOCK_ROWS = 2048;

interface ModelPass {
  start: number;
  beam?: BeamLevel[];
  codes?: Int32Array;
  ranking?: QueryRanking;
}

export async function retrieveBatch(context: BatchContext, q: BatchRetrieveQuery, each: BatchEach): Promise<void> {
  const { model, pool } = context;
  const dim = model.inputDim;
  if (!(q.embeddings instanceof Float32Array) || !Number.isSafeInteger(q.n) || q.n < 0 || q.embeddings.length !== q.n * dim) {
    throw new SidxError('SIDX_ERR_DIMENSION', `expected ${q.n} × ${dim} floats`, { field: 'embedding' });
  }
  const expand = resolveExpand(q.expand, true, pool, q.beamWidth);
  const { catalog } = context;
  const postings = context.postings
    ?? new PostingIndex(model.version, model.levels, catalog.spaces.postingsOf(model.version, model.levels), catalog);
  const ctx: Scoring = { model, scorer: context.scorer, postings, directory: ItemDirectory.build(catalog, model.version, model.levels) };
  const normWeight = beamNormWeight(model.metric, pool.bundle.manifest);
  const pass = async (start: number): Promise<ModelPass> => {
    const end = Math.min(q.n, start + BLOCK_ROWS);
    const rows = q.embeddings.subarray(start * dim, end * dim);
    if (expand === 'beam') {
      const res = await pool.beam(rows, end - start, q.beamWidth ?? DEFAULT_BEAM_WIDTH, normWeight);
      return { start, beam: res.levels, codes: res.codes };
    }
    const enc = await pool.encode(rows, end - start);
    const topM = enc.topCodes.length / ((end - start) * model.levels);
    return { start, codes: enc.codes, ranking: { topCodes: enc.topCodes, topDistances: enc.topDistances, topM } };
  };
  let next: Promise<ModelPass> | undefined = q.n > 0 ? pass(0) : undefined;
  // One set per (k, budget), reused query after query: `answer` copies out what it keeps.
  const scratch = new Map<string, CandidateSet>();
  while (next) {
    const block = await next;
    const end = Math.min(q.n, block.start + BLOCK_ROWS);
    next = end < q.n ? pass(end) : undefined;
    for (let i = block.start; i < end; i++) {
      const embedding = q.embeddings.subarray(i * dim, (i + 1) * dim);
      const row = rowOf(block, i - block.start, model.levels);
      // Variants with the same k and budget (and, without a rerank, the same cap) gather the same candidates: once.
      const sets = new Map<string, CandidateSet>();
      const hits = q.variants.map((v) => {
        const enough = candidatesWanted(v.k, v.maxCandidates, v.rerank);
        const key = `${v.k}/${v.maxCandidates}/${enough}`;
        let set = sets.get(key);
        if (!set) {
          let into = scratch.get(key);
          if (!into) scratch.set(key, into = new CandidateSet(v.maxCandidates));
          set = gatherCandidates(ctx.postings, model.version, row.querySids, expand, v.k, v.maxCandidates, row.ranking, row.beam, into, enough);
          sets.set(key, set);
        }
        return answer(ctx, embedding, set, v);
      });
      each(i, hits, ctx.directory);
    }
  }
}

/** Query r of a model pass, shaped as retrieve holds it for its single row. */
function rowOf(block: ModelPass, r: number, L: number): { querySids: Int32Array[]; ranking?: QueryRanking; beam?: BeamLevel[] } {
  if (block.beam) {
    const { codes, levels } = beamRow({ codes: block.codes!, levels: block.beam }, r);
    // As retrieve: the query's own SID (the encoder's codes) is gathered exactly, before the beam.
    return { querySids: [codes.slice()], beam: levels };
  }
  const { topCodes, topDistances, topM } = block.ranking!;
  const span = L * topM;
  return {
    querySids: [block.codes!.slice(r * L, (r + 1) * L)],
    ranking: { topCodes: topCodes.subarray(r * span, (r + 1) * span), topDistances: topDistances.subarray(r * span, (r + 1) * span), topM },
  };
}

/** Rerank (as retrieve does) and the first k items. */
function answer(ctx: Scoring, embedding: Float32Array, set: CandidateSet, v: BatchVariant): BatchHit {
  const { directory } = ctx;
  const { order, scores } = orderCandidates(ctx.scorer, ctx.model.metric, set.keys, v.rerank ? embedding : undefined, v.k);
  const rows: number[] = [];
  const out: number[] = [];
  const match: MatchKind[] = [];
  for (const i of v.k > 0 ? order : []) {
    const r = directory.rowOf(set.key(i));
    if (r < 0) continue;
    if (scores) out.push(scores[i]!);
    match.push(set.matchOf(i));
    if (rows.push(r) >= v.k) break;
  }
  return {
    rows: Int32Array.from(rows),
    scores: scores ? Float32Array.from(out) : null,
    match,
    candidates: candidateCounts(set),
  };
}
