/**
 * The order of an unscored answer (no rerank: the items come in the order a node gathers them, which for generated
 * SIDs is the beam's order, FORGE's HR@K convention) when a router merges its shards' answers. Every shard gathers
 * the same query (the router encoded it once) over its own items: the SIDs and prefixes are visited in the same
 * order on each, so an item's place follows from its SID and its match, as service/candidates.ts visits them:
 * the exact SIDs in the order of `querySids`; then either the beam's full SIDs in beam order and its shorter
 * prefixes, deepest level first, each level in beam order, or the Hamming-1 neighbours of each query SID in turn,
 * by the encoder's distance for the first when it ranked them, then the deepest differing level, then the code.
 * Items of one cell keep their shard's order (`mergeUnscored` breaks ties by place in the shard's answer).
 */
import { neighbourCost, queryRanking, type QueryRanking } from '../service/candidates.ts';
import type { QueryEncoding, RetrievedItem } from '../service/types.ts';

type Rank = number[];

/** The shards' items (each shard's in its own order), merged into the order in which one node would gather them. */
export function mergeUnscored(answers: readonly (readonly RetrievedItem[])[], querySids: readonly Int32Array[], encoded?: QueryEncoding): RetrievedItem[] {
  const ranking = rankingOf(encoded, querySids[0]?.length ?? 0);
  const ranked = answers.flatMap((items, shard) => items.map((item, place) => ({ item, key: [...gatheringRank(item, querySids, encoded, ranking), place, shard] })));
  ranked.sort((a, b) => compareRanks(a.key, b.key));
  return ranked.map((r) => r.item);
}

/** Where `item` comes in the gathering of a query with these `querySids` (and its beam or encoder row). */
export function gatheringRank(item: RetrievedItem, querySids: readonly Int32Array[], encoded?: QueryEncoding, ranking?: QueryRanking): Rank {
  const sid = item.sid;
  switch (item.match) {
    case 'exact':
      return [0, querySids.findIndex((q) => sameCodes(q, 0, sid, sid.length))];
    case 'beam': {
      const last = encoded?.beam?.levels.at(-1);
      if (!last) return [1, querySids.findIndex((q) => sameCodes(q, 0, sid, sid.length))];
      return [1, firstPrefix(last.codes, last.width, last.level, sid)];
    }
    case 'hamming1': {
      for (let i = 0; i < querySids.length; i++) {
        const position = differingLevel(querySids[i]!, sid);
        if (position < 0) continue;
        const cost = i === 0 && ranking ? neighbourCost({ codes: sid, position }, ranking) : Number.POSITIVE_INFINITY;
        return [1, i, cost, -position, sid[position]!];
      }
      return [1, querySids.length];
    }
    case 'prefix': {
      // Deepest level first, in beam order; a prefix's items in SID order (the posting scan's).
      const levels = encoded?.beam?.levels ?? [];
      for (let l = levels.length - 1; l >= 1; l--) {
        const { codes, width } = levels[l - 1]!;
        const b = firstPrefix(codes, width, l, sid);
        if (b >= 0) return [2, levels.length - l, b, ...sid];
      }
      return [2, levels.length, 0, ...sid];
    }
  }
}

function rankingOf(encoded: QueryEncoding | undefined, levels: number): QueryRanking | undefined {
  const enc = encoded?.enc;
  return enc && enc.topCodes.length > 0 && levels > 0 ? queryRanking(enc, levels) : undefined;
}

/** The first b of `width` prefixes of length `l` in `codes` that `sid` starts with; -1 if none. */
function firstPrefix(codes: Int32Array, width: number, l: number, sid: Int32Array): number {
  for (let b = 0; b < width; b++) if (sameCodes(codes, b * l, sid, l)) return b;
  return -1;
}

function sameCodes(codes: Int32Array, at: number, sid: Int32Array, l: number): boolean {
  if (at + l > codes.length || l > sid.length) return false;
  for (let i = 0; i < l; i++) if (codes[at + i] !== sid[i]) return false;
  return true;
}

/** The one level where `sid` differs from `query`; -1 if they differ at none or at more than one. */
function differingLevel(query: Int32Array, sid: Int32Array): number {
  if (query.length !== sid.length) return -1;
  let position = -1;
  for (let i = 0; i < sid.length; i++) {
    if (query[i] === sid[i]) continue;
    if (position >= 0) return -1;
    position = i;
  }
  return position;
}

function compareRanks(a: Rank, b: Rank): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length - b.length;
}
