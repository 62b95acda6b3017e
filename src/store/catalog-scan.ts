/** Read-side scans over the `postings` database (key layout in catalog.ts and sid/codec.ts). */
import type { Database } from 'lmdb';
import { MAX_CODE } from '../sid/codec.ts';
import { freeCodeAfterPrefix, hammingPrefixLength, hammingScanPrefix } from '../sid/hamming.ts';
import { KeyCollector, prefixEnd, readU64BE } from './keys.ts';

export interface Neighbour {
  key: bigint;
  codes: Int32Array;
  /** The level where it differs from the query SID. */
  position: number;
}

type Bin = Database<Buffer, Buffer>;

/** Internal keys (at `keyOffset` in each posting key) of the first `limit` postings starting with `prefix`. */
export function scanPostingKeys(postings: Bin, prefix: Buffer, keyOffset: number, limit: number): BigInt64Array {
  const out = new KeyCollector(limit);
  if (limit > 0) {
    for (const k of postings.getKeys({ start: prefix, end: prefixEnd(prefix), limit })) out.pushU64BE(k, keyOffset);
  }
  return out.toArray();
}

/**
 * Hamming-1 neighbours of `codes` (L = codes.length levels of `model`): one prefix scan per position in that
 * position's rotated key space, split in two ranges around the query's own code so exact matches are never
 * visited. Last position first (the finest residual), then by code and key; at most `limit` in all.
 */
export function scanHamming1(postings: Bin, model: number, codes: Int32Array, limit: number): Neighbour[] {
  const levels = codes.length;
  const plen = hammingPrefixLength(levels);
  const out: Neighbour[] = [];
  for (let i = levels - 1; i >= 0 && out.length < limit; i--) {
    const prefix = hammingScanPrefix(model, codes, i);
    const end = prefixEnd(prefix);
    const own = Buffer.allocUnsafe(plen + 2);
    prefix.copy(own);
    own.writeUInt16BE(codes[i], plen);
    let above = end;
    if (codes[i] < MAX_CODE) {
      above = Buffer.from(own);
      above.writeUInt16BE(codes[i] + 1, plen);
    }
    const ranges = [[prefix, own], [above, end]] as const;
    for (const [start, stop] of ranges) {
      if (start === undefined || out.length >= limit) continue;
      for (const k of postings.getKeys({ start, end: stop, limit: limit - out.length })) {
        const neighbour = codes.slice();
        neighbour[i] = freeCodeAfterPrefix(k, plen);
        out.push({ key: readU64BE(k, plen + 2), codes: neighbour, position: i });
      }
    }
  }
  return out;
}
