/** Read-side scans over the `postings` database (key layout in catalog.ts and sid/codec.ts). */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { assertCodes, assertModelVersion, encodeSidKey, encodeSidPrefix, MAX_CODE, SID_KEY_HEADER_BYTES, sidKeyLength } from '../sid/codec.ts';
import { assertLimit } from './catalog-input.ts';
import { freeCodeAfterPrefix, hammingPrefixLength, hammingScanPrefix } from '../sid/hamming.ts';
import { KeyCollector, prefixEnd, readU64BE, U64_BYTES } from './keys.ts';
import type { PostingLayout } from './catalog-meta.ts';

export interface Neighbour {
  key: bigint;
  codes: Int32Array;
  /** The level where it differs from the query SID. */
  position: number;
}

type Bin = Database<Buffer, Buffer>;

/** The catalog's three candidate scans with their input checks; `storedLevels(model)` is undefined for an unwritten model. */
export class PostingScans {
  #postings: Bin;
  #storedLevels: (model: number) => number | undefined;
  #layout: PostingLayout;

  constructor(postings: Bin, storedLevels: (model: number) => number | undefined, layout: PostingLayout) {
    this.#postings = postings;
    this.#storedLevels = storedLevels;
    this.#layout = layout;
  }

  exact(model: number, codes: Int32Array, limit: number): BigInt64Array {
    assertCodes(codes);
    assertLimit(limit);
    const levels = this.#levelsFor(model, codes.length, true);
    if (levels === undefined) return new BigInt64Array(0);
    const prefix = encodeSidKey(model, levels - 1, codes);
    return scanPostingKeys(this.#postings, prefix, prefix.length, limit);
  }

  prefix(model: number, codesPrefix: Int32Array, limit: number): BigInt64Array {
    if (!(codesPrefix instanceof Int32Array)) throw new SidxError('SIDX_ERR_INVALID_INPUT', 'codes must be an Int32Array', { field: 'codes' });
    if (codesPrefix.length > 0) assertCodes(codesPrefix);
    assertLimit(limit);
    const levels = this.#levelsFor(model, codesPrefix.length, false);
    if (levels === undefined) return new BigInt64Array(0);
    const prefix = encodeSidPrefix(model, levels - 1, codesPrefix, levels);
    return scanPostingKeys(this.#postings, prefix, sidKeyLength(levels), limit);
  }

  hamming1(model: number, codes: Int32Array, limit: number): Neighbour[] {
    assertCodes(codes);
    assertLimit(limit);
    if (this.#levelsFor(model, codes.length, true) === undefined) return [];
    return scanHamming1(this.#postings, model, codes, limit, this.#layout.naturalOnly);
  }

  /** Levels of `model`'s SIDs, or undefined when the model has never been written. Throws if `given` differs. */
  #levelsFor(model: number, given: number, exactLength: boolean): number | undefined {
    assertModelVersion(model);
    const levels = this.#storedLevels(model);
    if (levels !== undefined && (exactLength ? given !== levels : given > levels)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${model} has ${levels}-level SIDs, got ${given} codes`, { field: 'codes' });
    }
    return levels;
  }
}

/** A handle whose keys are views valid until the iterator's next step (openScanView). */
export type ScanView<V> = Database<V, Uint8Array>;

/**
 * A read-only handle on binary database `name` for bulk scans at open (scanSpacePostings, the SID tries): each key is
 * a view of lmdb-js's shared key buffer rather than a copy, and each value is `decode`d where it lies, so a scan
 * allocates no buffer per entry (a third of a million-key scan's time). The iterator's next step overwrites a key
 * view: read it before advancing, never keep it. Give every range a `start` (the handle's default would be [5]).
 * Never write through it.
 */
export function openScanView<V>(env: RootDatabase<Buffer, Buffer>, name: string, decode: (bytes: Uint8Array, size: number) => V): ScanView<V> {
  const keyEncoder = {
    writeKey: (key: Uint8Array, target: Uint8Array, start: number) => {
      target.set(key, start);
      return start + key.length;
    },
    readKey: (bytes: Uint8Array, start: number, end: number) => bytes.subarray(start, end),
  };
  return env.openDB({ name, keyEncoder, encoder: { decode, encode: () => { throw new Error(`${name}: a scan view is read-only`); } } } as never) as unknown as ScanView<V>;
}

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
 * visited. Last position first (the finest residual), then by code and key; at most `limit` in all. A natural-only
 * catalog has no rotated key spaces: the other positions skip-scan the natural order (scanPositionNatural).
 */
export function scanHamming1(postings: Bin, model: number, codes: Int32Array, limit: number, naturalOnly = false): Neighbour[] {
  const levels = codes.length;
  const plen = hammingPrefixLength(levels);
  const out: Neighbour[] = [];
  for (let i = levels - 1; i >= 0 && out.length < limit; i--) {
    if (naturalOnly && i < levels - 1) {
      scanPositionNatural(postings, model, codes, i, limit, out);
      continue;
    }
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

/**
 * The neighbours of `codes` differing at position `i` (< L-1) from the natural order alone, in the order of the rotated
 * scan (by the free code, then key): a skip-scan over the SIDs sharing the codes before `i`, one seek to
 * (prefix, x, the query's codes after i) per free code x present there.
 */
function scanPositionNatural(postings: Bin, model: number, codes: Int32Array, i: number, limit: number, out: Neighbour[]): void {
  const levels = codes.length;
  const target = encodeSidKey(model, levels - 1, codes);
  const at = SID_KEY_HEADER_BYTES + 2 * i; // the free code's bytes
  const sidEnd = sidKeyLength(levels);
  const end = prefixEnd(target.subarray(0, at));
  const seek = Buffer.from(target);
  const tail = target.subarray(at + 2, sidEnd);
  for (let x = 0; x <= MAX_CODE && out.length < limit;) {
    seek.writeUInt16BE(x, at);
    let next: Buffer | undefined;
    for (const k of postings.getKeys({ start: seek, end, limit: 1 })) next = k;
    if (next === undefined) return;
    const found = next.readUInt16BE(at);
    const order = Buffer.compare(next.subarray(at + 2, sidEnd), tail);
    if (order < 0) { // a SID with a higher free code and a lower tail: seek to (prefix, found, tail) next
      x = found > x ? found : found + 1;
      continue;
    }
    if (order === 0 && found !== codes[i]) {
      seek.writeUInt16BE(found, at);
      const sid = Buffer.from(seek.subarray(0, sidEnd));
      const neighbour = codes.slice();
      neighbour[i] = found;
      for (const k of postings.getKeys({ start: sid, end: prefixEnd(sid), limit: limit - out.length })) {
        out.push({ key: readU64BE(k, sidEnd), codes: neighbour.slice(), position: i });
      }
    }
    x = found + 1;
  }
}

/** Every SID of one key space with its item's internal key, in (SID, key) order: codes are count × levels. */
export interface SpacePostings {
  count: number;
  codes: Uint16Array;
  keys: BigInt64Array;
}

/**
 * Reads key space `model` (of `levels` levels) from its natural-order postings (rotation L-1), which hold each SID
 * and key in the key itself: one range scan, no record reads. `capacity`: expected count (arrays grow past it).
 */
export function scanSpacePostings(postings: Bin | ScanView<unknown>, model: number, levels: number, capacity: number): SpacePostings {
  const prefix = encodeSidPrefix(model, levels - 1, new Int32Array(0), levels);
  const keyAt = sidKeyLength(levels);
  let codes = new Uint16Array(Math.max(1, capacity) * levels);
  const keys = new KeyCollector(Math.max(1, capacity), Math.max(1, capacity));
  let n = 0;
  for (const k of postings.getKeys({ start: prefix, end: prefixEnd(prefix) })) {
    if (k.length !== keyAt + U64_BYTES) throw new Error(`posting key of ${k.length} bytes in a ${levels}-level key space`);
    if ((n + 1) * levels > codes.length) {
      const grown = new Uint16Array(codes.length * 2);
      grown.set(codes);
      codes = grown;
    }
    for (let l = 0; l < levels; l++) codes[n * levels + l] = (k[SID_KEY_HEADER_BYTES + 2 * l]! << 8) | k[SID_KEY_HEADER_BYTES + 2 * l + 1]!;
    keys.pushU64BE(k, keyAt);
    n++;
  }
  return { count: n, codes: codes.subarray(0, n * levels), keys: keys.toArray() };
}
