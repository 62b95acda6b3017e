/**
 * One query of SidxService.retrieve / retrieveMany, from its encoding to the top-k records: the expansion, the
 * served model's encoder or beam, the candidates from the posting index, the rerank (on the event loop, or on a pool
 * thread while other reads wait for the loop) and the records' fetch, each phase timed for `timingsMs`.
 */
import { isSidxError, SidxError } from '../errors.ts';
import type { BeamLevel, EncoderPool } from '../tokenizer/encoder-pool.ts';
import { beamRow, encodeRow } from '../tokenizer/worker-protocol.ts';
import type { Metric } from '../vector/vector-index.ts';
import type { VectorStore } from '../vector/vector-store.ts';
import type { Catalog } from '../store/catalog.ts';
import { gatherCandidates, ownThenBeam, queryRanking, uniqueSids, type QueryRanking } from './candidates.ts';
import type { CandidateSet, CandidateSetPool } from './candidate-set.ts';
import type { LivePostings } from './live-postings.ts';
import type { ActiveModel } from './model-space.ts';
import { beamNormWeight, candidateCounts, candidatesWanted, fetchItems, orderCandidates, orderCandidatesOffThread, queryEncoding, resolveExpand } from './retrieve-steps.ts';
import { DEFAULT_BEAM_WIDTH, type ExpandMode, type QueryEncoding, type RetrieveOutput, type RetrieveQuery } from './types.ts';

export interface RetrieveParts {
  model: ActiveModel;
  pool: EncoderPool;
  postings: LivePostings;
  store: VectorStore;
  catalog: Catalog;
  rerankOffThread: boolean;
  /** The set a retrieve gathers into when it scores on the event loop (gathering to fetching is one synchronous stretch). */
  candidates: CandidateSet;
  /** Sets of the retrieves whose rerank awaits a pool thread (each its own). */
  spareSets: CandidateSetPool;
  /**
   * Asked at the encode and at the rerank: whether this read is alone (runs its encoder and rerank on the event loop,
   * where a thread hop only pays while others wait for the loop).
   */
  alone: () => boolean;
}

/** The expansion a retrieve of `q` uses; throws, before anything runs, what the retrieve would refuse. */
export function checkRetrieve(pool: EncoderPool, q: RetrieveQuery): ExpandMode {
  if (q.rerank && !q.embedding) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', 'rerank needs an embedding', { field: 'rerank' });
  }
  const expand = resolveExpand(q.expand, q.embedding !== undefined, pool, q.beamWidth);
  if (expand === 'beam' && !q.embedding) throw new SidxError('SIDX_ERR_INVALID_INPUT', 'expand "beam" needs an embedding', { field: 'embedding' });
  if (expand === 'beam' && !pool.hasBeam) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${pool.bundle.manifest.id} has no beam.onnx loaded`, { field: 'expand' });
  }
  return expand;
}

/**
 * checkRetrieve for every query of a POST /v1/retrieve/batch, all before any runs; an error names its query
 * (`queries[3].beamWidth`).
 */
export function checkEach(pool: EncoderPool, qs: readonly RetrieveQuery[]): ExpandMode[] {
  return qs.map((q, i) => {
    try {
      return checkRetrieve(pool, q);
    } catch (err) {
      if (!isSidxError(err)) throw err;
      throw new SidxError(err.code, `queries[${i}]: ${err.message}`, { field: `queries[${i}]${err.field === undefined ? '' : `.${err.field}`}` });
    }
  });
}

/** The phase and ms of the shared encoder call a batch query's row came from. */
export interface SharedEncode {
  phase: 'encode' | 'beam';
  ms: number;
}

/** A batch's queries with their encoder rows (`encoded`), and the shared call each row came from. */
export interface EncodedBatch {
  queries: RetrieveQuery[];
  shared: (SharedEncode | undefined)[];
}

/**
 * The encoder work of a batch's queries as one pool call per kind: the beams of one width stacked into one `beam`
 * call, the encoder rows into one `encode` call (the pool splits a call over its workers), so that a batch queues a
 * few chunks rather than one per query (load shedding counts chunks). Each query gets its row as `encoded`, as a
 * cluster router's queries do; what queryEncoding would not encode stays as it is.
 */
export async function encodeEach(pool: EncoderPool, metric: Metric, qs: readonly RetrieveQuery[], expands: readonly ExpandMode[]): Promise<EncodedBatch> {
  const groups = new Map<number, number[]>(); // beam width, or 0 for encoder rows -> the queries' indexes
  qs.forEach((q, i) => {
    if (!q.embedding || q.encoded) return;
    const key = expands[i] === 'beam' ? q.beamWidth ?? DEFAULT_BEAM_WIDTH : q.sids ? -1 : 0;
    if (key >= 0) (groups.get(key) ?? groups.set(key, []).get(key)!).push(i);
  });
  const queries = qs.slice();
  const shared = new Array<SharedEncode | undefined>(qs.length);
  await Promise.all([...groups].map(async ([width, rows]) => {
    const dim = pool.inputDim;
    const stacked = new Float32Array(rows.length * dim);
    rows.forEach((i, r) => stacked.set(qs[i]!.embedding!, r * dim));
    const t0 = performance.now();
    let rowOf: (r: number) => QueryEncoding;
    if (width === 0) {
      const res = await pool.encode(stacked, rows.length);
      rowOf = (r) => ({ enc: encodeRow(res, r, rows.length, pool.levels) });
    } else {
      const res = await pool.beam(stacked, rows.length, width, beamNormWeight(metric, pool.bundle.manifest));
      rowOf = (r) => ({ beam: beamRow(res, r) });
    }
    const call: SharedEncode = { phase: width === 0 ? 'encode' : 'beam', ms: performance.now() - t0 };
    rows.forEach((i, r) => {
      queries[i] = { ...qs[i]!, encoded: rowOf(r) };
      shared[i] = call;
    });
  }));
  return { queries, shared };
}

export async function retrieveOne(p: RetrieveParts, q: RetrieveQuery, expand = checkRetrieve(p.pool, q)): Promise<RetrieveOutput> {
  const { model, store } = p;
  const t0 = performance.now();
  const L = model.levels;
  let querySids = q.sids ?? [];
  let exactSids = querySids;
  let ranking: QueryRanking | undefined;
  let beam: BeamLevel[] | undefined;
  const encoded = await queryEncoding(p.pool, model.metric, q, expand, { inline: p.alone() });
  // The beam's time is the `beam` phase, the encoder's the `encode` phase.
  const tEncoded = encoded?.beam ? t0 : performance.now();
  if (encoded?.beam) {
    const res = encoded.beam;
    beam = res.levels;
    const last = beam[L - 1]!;
    // The query's own SID (the encoder's, as an upsert of it would get) is matched exactly, after any given sids and
    // before the beam: the beam's ranking may leave that cell out, or reach it only past maxCandidates.
    const own = res.codes.slice(0, L);
    exactSids = uniqueSids([...querySids, own]);
    if (!q.sids) querySids = ownThenBeam(own, last.codes, last.width, L);
    else querySids = exactSids;
  } else if (encoded?.enc) {
    const enc = encoded.enc;
    querySids = exactSids = [enc.codes.slice(0, L)];
    ranking = queryRanking(enc, L);
  }
  const t1 = performance.now();
  const rerank = q.rerank ?? q.embedding !== undefined;
  // Under load the rerank leaves the event loop to the other requests; a lone one shares its rows with a pool thread.
  const alone = p.alone();
  const offThread = rerank && p.rerankOffThread && (alone ? store.scoreShared : store.scoreAsync) !== undefined;
  const own = offThread ? p.spareSets.take(q.maxCandidates) : undefined;
  try {
    const set = gatherCandidates(p.postings.source(model.version), model.version, exactSids, expand, q.k, q.maxCandidates, ranking, beam,
      own ?? p.candidates, candidatesWanted(q.k, q.maxCandidates, rerank));
    const t2 = performance.now();
    const { order, scores } = offThread
      ? await orderCandidatesOffThread(store, model.metric, set.keys, q.embedding, q.k, alone)
      : orderCandidates(store, model.metric, set.keys, rerank ? q.embedding : undefined, q.k);
    const t3 = performance.now();
    const items = fetchItems(p.catalog, set, order, scores, q.k);
    const t4 = performance.now();
    return {
      model: model.id, expand, items, querySids, candidates: candidateCounts(set),
      timingsMs: { encode: tEncoded - t0, beam: t1 - tEncoded, candidates: t2 - t1, rerank: t3 - t2, fetch: t4 - t3, total: t4 - t0 },
    };
  } finally {
    if (own) p.spareSets.give(own);
  }
}

/** `out` with the shared encoder call its row came from added to that phase (encode, or beam) and to the total. */
export function withSharedEncode(out: RetrieveOutput, call: SharedEncode | undefined): RetrieveOutput {
  if (call) out.timingsMs = { ...out.timingsMs, [call.phase]: out.timingsMs[call.phase] + call.ms, total: out.timingsMs.total + call.ms };
  return out;
}
