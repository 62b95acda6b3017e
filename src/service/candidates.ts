/**
 * Candidate generation over the SID index: exact SID matches in beam order, then (when asked) the items at
 * Hamming distance 1, nearest first. "Nearest" uses the encoder's per-level top-M distances when the query
 * SID came from an embedding: a neighbour that swaps level l's code for the r-th best code costs
 * d_l(r) - d_l(0); codes outside the top M come after, deeper levels first (in residual codes they move the
 * reconstruction least).
 *
 * With expand 'beam' the query's level-wise beam (src/numeric/beam-graph.ts, run by the encoder pool) replaces
 * Hamming-1: after the exact SIDs (the caller passes the given sids and the query's own SID), the items of the
 * final-level beam SIDs in score order, then, while the budget lasts, the items under the beam's shorter prefixes,
 * deepest level first and best prefix first within a level (one prefix scan each).
 */
import type { Catalog, Neighbour } from '../store/catalog.ts';
import type { BeamLevel } from '../tokenizer/encoder-pool.ts';
import type { ExpandMode } from './types.ts';
import { BEAM, CandidateSet, EXACT, HAMMING1, keyWords, PREFIX, type MatchCode } from './candidate-set.ts';
import { PostingIndex, type RowSink } from './posting-index.ts';

export interface QueryRanking {
  /** levels × M codes and squared distances for the first query SID, best first per level. */
  topCodes: Int32Array;
  topDistances: Float32Array;
  topM: number;
}

/** The ranking of a one-row encoder answer of `levels` levels (its top-M codes and distances per level). */
export function queryRanking(enc: Pick<QueryRanking, 'topCodes' | 'topDistances'>, levels: number): QueryRanking {
  return { topCodes: enc.topCodes, topDistances: enc.topDistances, topM: enc.topCodes.length / levels };
}

/** The catalog's candidate scans (Catalog, or a PostingIndex with the same results). */
export type CandidateSource = Pick<Catalog, 'exact' | 'prefix' | 'hamming1'>;

/**
 * Whether a beam query over a live PostingIndex gathers in one native call (PostingIndex.gatherBeam) or scan by scan
 * in JS; the same candidates either way. A switch for benches and tests that compare the two.
 */
export const gathering = { native: true };

/** How many neighbours one prefix scan may return before ranking, as a multiple of the candidate cap. */
const NEIGHBOUR_SCAN_FACTOR = 4;

/**
 * The candidates of one query, gathered into `into` (emptied first; a new set by default): its keys, match kinds and
 * counts (candidate-set.ts). Gathering stops once the set holds `enough` (at most maxCandidates; a caller that keeps
 * the gathering order and answers k items asks for k). Every scan limit still follows maxCandidates, so the first
 * `enough` candidates are the same whatever `enough` is.
 */
export function gatherCandidates(
  catalog: CandidateSource,
  model: number,
  querySids: readonly Int32Array[],
  expand: ExpandMode,
  k: number,
  maxCandidates: number,
  ranking?: QueryRanking,
  beam?: readonly BeamLevel[],
  into?: CandidateSet,
  enough = maxCandidates,
): CandidateSet {
  const out = into ? into.reset(maxCandidates) : new CandidateSet(maxCandidates);
  const stop = Math.min(enough, maxCandidates);
  if (expand === 'beam' && beam && gathering.native && catalog instanceof PostingIndex && catalog.gatherBeam(model, querySids, beam, maxCandidates, stop, out)) return out;
  const taker = new Taker(out, stop);
  for (const sid of querySids) {
    if (out.count >= stop) break;
    taker.scan(catalog, model, sid, 0, sid.length, true, maxCandidates - out.count);
  }
  if (expand === 'beam') {
    if (beam) addBeamCandidates(catalog, model, beam, taker, maxCandidates);
    return out;
  }
  const wantNeighbours = expand === 'hamming1' || (expand === 'auto' && out.count < k);
  if (!wantNeighbours) return out;
  for (let i = 0; i < querySids.length && out.count < stop; i++) {
    const budget = maxCandidates - out.count;
    const neighbours = catalog.hamming1(model, querySids[i]!, budget * NEIGHBOUR_SCAN_FACTOR);
    const ordered = orderNeighbours(neighbours, i === 0 ? ranking : undefined);
    for (const n of ordered) {
      if (out.count >= stop) break;
      out.addKey(n.key, HAMMING1);
    }
  }
  return out;
}

/** Appends the items under one query's beam (row 0 of each level) until the taker's max. */
function addBeamCandidates(catalog: CandidateSource, model: number, beam: readonly BeamLevel[], taker: Taker, maxCandidates: number): void {
  const { out, max } = taker;
  const levels = beam.length;
  for (let l = levels; l >= 1; l--) {
    const { width, codes } = beam[l - 1]!;
    taker.kind = l === levels ? BEAM : PREFIX;
    for (let b = 0; b < width; b++) {
      if (out.count >= max) return;
      const remaining = maxCandidates - out.count;
      // A shorter prefix also holds the items already taken from deeper levels: scan past them.
      const whole = l === levels;
      taker.scan(catalog, model, codes, b * l, l, whole, whole ? remaining : remaining + out.count);
    }
  }
}

/** Appends a scan's keys not in the set yet as `kind`, until `max` (deduped on the keys' two words: no bigint per key). */
class Taker implements RowSink {
  kind: MatchCode = EXACT;
  constructor(readonly out: CandidateSet, readonly max: number) {}

  rows(words: Uint32Array, from: number, to: number): boolean {
    return this.out.addRows(words, from, to, this.kind, this.max);
  }

  /**
   * One exact (`whole`) or prefix scan of codes[at..at+m) with `limit`. A live PostingIndex is read in place (no
   * typed array per scan), any other source through its exact/prefix.
   */
  scan(source: CandidateSource, model: number, codes: Int32Array, at: number, m: number, whole: boolean, limit: number): void {
    if (source instanceof PostingIndex && source.accepts(model, codes, at, m, limit, whole)) {
      source.visit(codes, at, m, limit, this);
      return;
    }
    const q = at === 0 && m === codes.length ? codes : codes.subarray(at, at + m);
    const keys = whole ? source.exact(model, q, limit) : source.prefix(model, q, limit);
    this.rows(keyWords(keys), 0, keys.length);
  }
}

/** The SIDs in order, each once (a copy of each). */
export function uniqueSids(sids: readonly Int32Array[]): Int32Array[] {
  const seen = distinct.reset(sids.length);
  const out: Int32Array[] = [];
  for (const sid of sids) if (seen.add(sid, 0, sid.length)) out.push(sid.slice());
  seen.reset(0);
  return out;
}

/**
 * `own`, then the `width` SIDs of L codes in `codes` (a beam's final level, best first) that differ from it and
 * from each other: views into `codes`, not copies (a beam answer has 129 SIDs; a typed array each costs ~1 µs).
 */
export function ownThenBeam(own: Int32Array, codes: Int32Array, width: number, L: number): Int32Array[] {
  const seen = distinct.reset(width + 1);
  seen.add(own, 0, L);
  const out = [own];
  for (let b = 0; b < width; b++) if (seen.add(codes, b * L, L)) out.push(codes.subarray(b * L, (b + 1) * L));
  seen.reset(0);
  return out;
}

/**
 * SIDs seen so far (codes[at..at+L) of the arrays added), hashed by their codes (open addressing, linear probing):
 * no string or heap number per SID. One is reused by the synchronous functions above.
 */
class DistinctSids {
  #slots = new Int32Array(256);
  #mask = 0;
  #arrays: Int32Array[] = [];
  #ats: number[] = [];
  #lengths: number[] = [];

  /** Empties it for up to `n` SIDs. */
  reset(n: number): this {
    let size = 16;
    while (size < 2 * n) size *= 2;
    if (this.#slots.length < size) this.#slots = new Int32Array(size);
    this.#slots.fill(0, 0, size);
    this.#mask = size - 1;
    this.#arrays.length = 0;
    this.#ats.length = 0;
    this.#lengths.length = 0;
    return this;
  }

  /** Adds the SID codes[at..at+L); false when an equal one was added. */
  add(codes: Int32Array, at: number, L: number): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    let h = L;
    for (let l = 0; l < L; l++) h = Math.imul(h ^ codes[at + l]!, 0x9e3779b1);
    h = (h ^ (h >>> 15)) & mask;
    for (let e = slots[h]!; e !== 0; e = slots[h]!) {
      const other = this.#arrays[e - 1]!;
      const from = this.#ats[e - 1]!;
      if (this.#lengths[e - 1] === L) {
        let l = 0;
        while (l < L && other[from + l] === codes[at + l]) l++;
        if (l === L) return false;
      }
      h = (h + 1) & mask;
    }
    slots[h] = this.#arrays.push(codes);
    this.#ats.push(at);
    this.#lengths.push(L);
    return true;
  }
}

const distinct = new DistinctSids();

export function orderNeighbours(neighbours: Neighbour[], ranking?: QueryRanking): Neighbour[] {
  const cost = new Float64Array(neighbours.length);
  neighbours.forEach((n, i) => {
    cost[i] = ranking ? neighbourCost(n, ranking) : Number.POSITIVE_INFINITY;
  });
  const order = Array.from(neighbours.keys());
  order.sort((a, b) => {
    const ca = cost[a]!;
    const cb = cost[b]!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    const na = neighbours[a]!;
    const nb = neighbours[b]!;
    if (na.position !== nb.position) return nb.position - na.position;
    const codeA = na.codes[na.position]!;
    const codeB = nb.codes[nb.position]!;
    if (codeA !== codeB) return codeA - codeB;
    return na.key < nb.key ? -1 : na.key > nb.key ? 1 : 0;
  });
  return order.map((i) => neighbours[i]!);
}

/** A neighbour's place by the encoder's distances at its differing level (lower first; Infinity when not ranked there). */
export function neighbourCost(n: Pick<Neighbour, 'codes' | 'position'>, ranking: QueryRanking): number {
  const { topCodes, topDistances, topM } = ranking;
  const base = n.position * topM;
  const code = n.codes[n.position]!;
  for (let r = 0; r < topM; r++) {
    if (topCodes[base + r] === code) return topDistances[base + r]! - topDistances[base]!;
  }
  return Number.POSITIVE_INFINITY;
}
