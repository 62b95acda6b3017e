/**
 * The steps of a retrieve that SidxService.retrieve and the batched path (retrieve-batch.ts) share, so that both
 * choose the expansion, score the beam's prefixes and order the candidates alike.
 */
import { SidxError } from '../errors.ts';
import type { ModelManifest } from '../tokenizer/bundle.ts';
import type { CallOptions, EncoderPool } from '../tokenizer/encoder-pool.ts';
import type { VectorScorer } from '../vector/vector-store.ts';
import type { Metric } from '../vector/vector-index.ts';
import { BEAM, EXACT, HAMMING1, PREFIX, type CandidateSet } from './candidate-set.ts';
import { rankByScore } from './score-rank.ts';
import type { Catalog } from '../store/catalog.ts';
import { DEFAULT_BEAM_WIDTH, type ExpandMode, type QueryEncoding, type RetrievedItem, type RetrieveOutput, type RetrieveQuery } from './types.ts';

/** The expansion asked for, else the beam for an embedding on a model with beam.onnx, else auto; checks beamWidth. */
export function resolveExpand(asked: ExpandMode | undefined, withEmbedding: boolean, pool: EncoderPool, beamWidth: number | undefined): ExpandMode {
  const expand = asked ?? (withEmbedding && pool.hasBeam ? 'beam' : 'auto');
  if (beamWidth !== undefined && expand !== 'beam') {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', 'beamWidth applies only to expand "beam"', { field: 'beamWidth' });
  }
  return expand;
}

/**
 * The served model's encoder output a retrieve of `q` needs: the beam for expand 'beam', one encoder row for the
 * other expansions when an embedding and no sids are given; `q.encoded` when a cluster router computed it already.
 */
export async function queryEncoding(pool: EncoderPool, metric: Metric, q: RetrieveQuery, expand: ExpandMode, opts?: CallOptions): Promise<QueryEncoding | undefined> {
  if (!q.embedding) return undefined;
  if (expand === 'beam') return { beam: q.encoded?.beam ?? await pool.beam(q.embedding, 1, q.beamWidth ?? DEFAULT_BEAM_WIDTH, beamNormWeight(metric, pool.bundle.manifest), opts) };
  return q.sids ? undefined : { enc: q.encoded?.enc ?? await pool.encode(q.embedding, 1, opts) };
}

/**
 * The beam's prefix score weight: 0 ranks prefixes by partial inner product, 1 by distance to the codeword sum, between
 * them a blend. The bundle's `beamNormWeight` decides; without one, 0 where the codebooks live in the input space of an
 * ip model (it found more of the exact top-10, docs/eval.md) and 1 otherwise (l2 models, latent spaces).
 */
export function beamNormWeight(metric: Metric, manifest: Pick<ModelManifest, 'beamNormWeight' | 'method'>): number {
  if (manifest.beamNormWeight !== undefined) return manifest.beamNormWeight;
  return metric === 'ip' && manifest.method === 'rqkmeans' ? 0 : 1;
}

/**
 * How many candidates a retrieve gathers: all of maxCandidates when they are ranked by vector score; without a rerank
 * the answer is the first k in gathering order, so gathering past k would change only the counts.
 */
export function candidatesWanted(k: number, maxCandidates: number, rerank: boolean): number {
  return rerank ? maxCandidates : Math.min(k, maxCandidates);
}

/**
 * Candidate positions best first: by vector score (signed, higher is better; non-finite scores left out) when a
 * query embedding is given, else in the order they were gathered. `keys`: the set's view, scored in place. `k` positions are ranked up front, the rest only
 * when the caller reads past them (score-rank.ts).
 */
export function orderCandidates(scorer: VectorScorer, metric: Metric, keys: BigInt64Array, query: Float32Array | undefined, k: number): { order: Iterable<number>; scores?: Float32Array } {
  if (!query || keys.length === 0) return { order: keys.keys() };
  if (scorer.rank) {
    const { scores, top } = scorer.rank(query, keys, k);
    return ranked(scores, metric, k, top);
  }
  return ranked(scorer.score(query, keys, k), metric, k); // the k returned carry exact scores whatever the storage
}

/**
 * orderCandidates with the scoring off the event loop where the storage offers it (VectorScorer.scoreAsync), or with
 * `shared`, split between the event loop and a pool thread (scoreShared).
 */
export async function orderCandidatesOffThread(scorer: VectorScorer, metric: Metric, keys: BigInt64Array, query: Float32Array | undefined, k: number,
  shared = false): Promise<{ order: Iterable<number>; scores?: Float32Array }> {
  const score = shared ? scorer.scoreShared : scorer.scoreAsync;
  if (!query || keys.length === 0 || !score) return orderCandidates(scorer, metric, keys, query, k);
  if (!shared && scorer.rankAsync) {
    const { scores, top } = await scorer.rankAsync(query, keys, k);
    return ranked(scores, metric, k, top);
  }
  return ranked(await score.call(scorer, query, keys, k), metric, k);
}

/** `top`: the first k positions when the scorer ranked them already. */
function ranked(scores: Float32Array, metric: Metric, k: number, top?: Int32Array): { order: Iterable<number>; scores: Float32Array } {
  return { order: rankByScore(scores, metric === 'ip' ? 1 : -1, k, top), scores };
}

/** The first `k` candidates in `order` that the catalog still holds, as retrieve answers them. */
export function fetchItems(catalog: Pick<Catalog, 'recordOf'>, set: CandidateSet, order: Iterable<number>, scores: Float32Array | undefined, k: number): RetrievedItem[] {
  const items: RetrievedItem[] = [];
  for (const i of k > 0 ? order : []) {
    const rec = catalog.recordOf(set.key(i));
    if (!rec) continue;
    // Stop before asking the order for one more: past k it sorts the rest (score-rank.ts).
    if (items.push({ id: rec.id, score: scores ? scores[i]! : null, sid: rec.codes, match: set.matchOf(i) }) >= k) break;
  }
  return items;
}

export function candidateCounts(set: CandidateSet): RetrieveOutput['candidates'] {
  return { exact: set.countOf(EXACT), hamming1: set.countOf(HAMMING1), beam: set.countOf(BEAM), prefix: set.countOf(PREFIX), total: set.count };
}
