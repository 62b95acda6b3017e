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
import type { ExpandMode, MatchKind } from './types.ts';
import { KeySet, keyWords } from './key-set.ts';
import { PostingIndex, type RowSink } from './posting-index.ts';

export interface QueryRanking {
  /** levels × M codes and squared distances for the first query SID, best first per level. */
  topCodes: Int32Array;
  topDistances: Float32Array;
  topM: number;
}

/** The catalog's candidate scans (Catalog, or a PostingIndex with the same results). */
export type CandidateSource = Pick<Catalog, 'exact' | 'prefix' | 'hamming1'>;

export interface CandidateSet {
  keys: bigint[];
  match: MatchKind[];
  exact: number;
  hamming1: number;
  beam: number;
  prefix: number;
}

/** How many neighbours one prefix scan may return before ranking, as a multiple of the candidate cap. */
const NEIGHBOUR_SCAN_FACTOR = 4;

export function gatherCandidates(
  catalog: CandidateSource,
  model: number,
  querySids: readonly Int32Array[],
  expand: ExpandMode,
  k: number,
  maxCandidates: number,
  ranking?: QueryRanking,
  beam?: readonly BeamLevel[],
): CandidateSet {
  const out: CandidateSet = { keys: [], match: [], exact: 0, hamming1: 0, beam: 0, prefix: 0 };
  const taker = new Taker(out, maxCandidates);
  const seen = taker.seen;
  for (const sid of querySids) {
    if (out.keys.length >= maxCandidates) break;
    taker.scan(catalog, model, sid, 0, sid.length, true, maxCandidates - out.keys.length);
  }
  if (expand === 'beam') {
    if (beam) addBeamCandidates(catalog, model, beam, taker);
    return out;
  }
  const wantNeighbours = expand === 'hamming1' || (expand === 'auto' && out.keys.length < k);
  if (!wantNeighbours) return out;
  querySids.forEach((sid, i) => {
    if (out.keys.length >= maxCandidates) return;
    const budget = maxCandidates - out.keys.length;
    const neighbours = catalog.hamming1(model, sid, budget * NEIGHBOUR_SCAN_FACTOR);
    const ordered = orderNeighbours(neighbours, i === 0 ? ranking : undefined);
    for (const n of ordered) {
      if (out.keys.length >= maxCandidates) break;
      if (!seen.addKey(n.key)) continue;
      out.keys.push(n.key);
      out.match.push('hamming1');
      out.hamming1++;
    }
  });
  return out;
}

/** Appends the items under one query's beam (row 0 of each level) until `maxCandidates`. */
function addBeamCandidates(catalog: CandidateSource, model: number, beam: readonly BeamLevel[], taker: Taker): void {
  const { out, max: maxCandidates, seen } = taker;
  const levels = beam.length;
  for (let l = levels; l >= 1; l--) {
    const { width, codes } = beam[l - 1]!;
    taker.kind = l === levels ? 'beam' : 'prefix';
    for (let b = 0; b < width; b++) {
      const remaining = maxCandidates - out.keys.length;
      if (remaining <= 0) return;
      // A shorter prefix also holds the items already taken from deeper levels: scan past them.
      const whole = l === levels;
      taker.scan(catalog, model, codes, b * l, l, whole, whole ? remaining : remaining + seen.size);
    }
  }
}

/** Appends a scan's keys not seen yet as `kind`, until `max` (deduped on the keys' two words: no bigint for a seen key). */
class Taker implements RowSink {
  kind: Exclude<MatchKind, 'hamming1'> = 'exact';
  readonly seen: KeySet;
  constructor(readonly out: CandidateSet, readonly max: number) {
    this.seen = new KeySet(Math.min(max, 1 << 16));
  }

  row(keys: BigInt64Array, words: Uint32Array, row: number): boolean {
    const out = this.out;
    if (this.seen.add(words[2 * row]!, words[2 * row + 1]!)) {
      out.keys.push(keys[row]!);
      out.match.push(this.kind);
      out[this.kind]++;
    }
    return out.keys.length < this.max;
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
    const words = keyWords(keys);
    for (let i = 0; i < keys.length && this.row(keys, words, i); i++);
  }
}

/** The SIDs in order, each once (a copy of each). */
export function uniqueSids(sids: readonly Int32Array[]): Int32Array[] {
  const seen = new Set<number | string>();
  const out: Int32Array[] = [];
  for (const sid of sids) {
    const key = sidIdentity(sid, 0, sid.length);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(sid.slice());
  }
  return out;
}

/**
 * `own`, then the `width` SIDs of L codes in `codes` (a beam's final level, best first) that differ from it and
 * from each other: views into `codes`, not copies (a beam answer has 129 SIDs; a typed array each costs ~1 µs).
 */
export function ownThenBeam(own: Int32Array, codes: Int32Array, width: number, L: number): Int32Array[] {
  const seen = new Set<number | string>([sidIdentity(own, 0, L)]);
  const out = [own];
  for (let b = 0; b < width; b++) {
    const key = sidIdentity(codes, b * L, L);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(codes.subarray(b * L, (b + 1) * L));
  }
  return out;
}

/** A SID's identity (codes[at..at+L)) for dedupe: a number up to 3 levels (16 bits per code, and the length), else text. */
function sidIdentity(codes: Int32Array, at: number, L: number): number | string {
  if (L > 3) return codes.subarray(at, at + L).join(',');
  let key = L;
  for (let l = 0; l < L; l++) key = key * 65536 + codes[at + l]!;
  return key;
}

export function orderNeighbours(neighbours: Neighbour[], ranking?: QueryRanking): Neighbour[] {
  const cost = new Float64Array(neighbours.length);
  neighbours.forEach((n, i) => {
    cost[i] = ranking ? rankedCost(n, ranking) : Number.POSITIVE_INFINITY;
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

function rankedCost(n: Neighbour, ranking: QueryRanking): number {
  const { topCodes, topDistances, topM } = ranking;
  const base = n.position * topM;
  const code = n.codes[n.position]!;
  for (let r = 0; r < topM; r++) {
    if (topCodes[base + r] === code) return topDistances[base + r]! - topDistances[base]!;
  }
  return Number.POSITIVE_INFINITY;
}
