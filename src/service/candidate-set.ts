/**
 * The candidates of one retrieve, in typed arrays: their internal keys (int64) in gathering order, each one's match
 * kind as a byte code, the count per kind, and a hash of the keys (open addressing, linear probing over candidate
 * positions) that dedupes them by the keys' two u32 words. Candidate gathering takes ~1,000 keys per beam query,
 * most of them straight from the posting index's rows (their words): no bigint is made per key, and `keys` is a
 * view the rerank scores as is (VectorScorer.score takes a BigInt64Array).
 *
 * A set may be `reset` and filled again (the service keeps one for its retrieves): its arrays are kept, so views
 * from before a reset read the new candidates. Every reader of a set is synchronous (gather, score, fetch).
 */
import type { MatchKind } from './types.ts';

/** Match kinds as stored in `CandidateSet.match` (MATCH_KINDS[code] is the kind). */
export const EXACT = 0;
export const HAMMING1 = 1;
export const BEAM = 2;
export const PREFIX = 3;
export type MatchCode = typeof EXACT | typeof HAMMING1 | typeof BEAM | typeof PREFIX;
export const MATCH_KINDS: readonly MatchKind[] = ['exact', 'hamming1', 'beam', 'prefix'];

const MIN_CAPACITY = 64;
/** Initial capacity at most this (a larger budget grows to what it takes). */
const MAX_INITIAL = 4096;

export class CandidateSet {
  #keys!: BigInt64Array;
  /** `#keys` as (low, high) u32 words. */
  #words!: Uint32Array;
  #match!: Uint8Array;
  /** Candidate position + 1 per slot (0: empty); twice the capacity, so at most half full. */
  #table!: Int32Array;
  #mask = 0;
  #count = 0;
  #counts = new Int32Array(4);

  /** `expected`: about how many candidates it will hold (the budget; it grows past that). */
  constructor(expected = MIN_CAPACITY) {
    this.#allocate(initialCapacity(expected));
  }

  /** Empties the set for about `expected` candidates, keeping its arrays unless they are far larger than that. */
  reset(expected: number): this {
    const cap = initialCapacity(expected);
    if (this.#keys.length > 8 * cap) this.#allocate(cap);
    else if (this.#count > 0) this.#table.fill(0);
    this.#count = 0;
    this.#counts.fill(0);
    return this;
  }

  get count(): number {
    return this.#count;
  }

  /** The keys in gathering order (a view: valid until the set changes). */
  get keys(): BigInt64Array {
    return this.#keys.subarray(0, this.#count);
  }

  /** The match codes in gathering order (a view, as `keys`). */
  get match(): Uint8Array {
    return this.#match.subarray(0, this.#count);
  }

  key(i: number): bigint {
    return this.#keys[i]!;
  }

  matchOf(i: number): MatchKind {
    return MATCH_KINDS[this.#match[i]!]!;
  }

  /** Candidates taken as `code`. */
  countOf(code: MatchCode): number {
    return this.#counts[code]!;
  }

  /** Adds the key whose little-endian words are `lo`, `hi` as `kind`; false when it was there already. */
  add(lo: number, hi: number, kind: MatchCode): boolean {
    if (this.#count === this.#keys.length) this.#grow();
    const c = this.#count;
    const w = this.#words;
    w[2 * c] = lo;
    w[2 * c + 1] = hi;
    if (!this.#claim(c)) return false;
    this.#match[c] = kind;
    this.#count = c + 1;
    this.#counts[kind]!++;
    return true;
  }

  /** `add` for a bigint key. */
  addKey(key: bigint, kind: MatchCode): boolean {
    if (this.#count === this.#keys.length) this.#grow();
    const c = this.#count;
    this.#keys[c] = key;
    if (!this.#claim(c)) return false;
    this.#match[c] = kind;
    this.#count = c + 1;
    this.#counts[kind]!++;
    return true;
  }

  /**
   * Adds the keys of rows [from, to) (row r's words at words[2r], words[2r + 1]) not held yet, in order, as `kind`,
   * until the set holds `max`; returns whether it holds fewer than `max`.
   */
  addRows(words: Uint32Array, from: number, to: number, kind: MatchCode, max: number): boolean {
    let c = this.#count;
    if (c >= max) return false;
    const before = c;
    for (let r = from; r < to; r++) {
      if (c === this.#keys.length) {
        this.#count = c;
        this.#grow();
      }
      const w = this.#words;
      w[2 * c] = words[2 * r]!;
      w[2 * c + 1] = words[2 * r + 1]!;
      if (!this.#claim(c)) continue;
      this.#match[c] = kind;
      if (++c >= max) break;
    }
    this.#count = c;
    this.#counts[kind]! += c - before;
    return c < max;
  }

  /**
   * Lets `fill` (a native gatherer: PostingIndex.gatherBeam) add candidates straight into the set's arrays, with room
   * for `room` in all: it returns the new count, or -1 when it added nothing (then so does this, with false).
   */
  fillWith(room: number, fill: (words: Uint32Array, match: Uint8Array, table: Int32Array, counts: Int32Array, count: number) => number): boolean {
    while (this.#keys.length < room) this.#grow();
    const n = fill(this.#words, this.#match, this.#table, this.#counts, this.#count);
    if (n < 0) return false;
    this.#count = n;
    return true;
  }

  /** Enters position c (its words written) in the hash unless an equal key is there; false when one is. */
  #claim(c: number): boolean {
    const w = this.#words;
    const lo = w[2 * c]!;
    const hi = w[2 * c + 1]!;
    const table = this.#table;
    const mask = this.#mask;
    let h = hashWords(lo, hi) & mask;
    for (let e = table[h]!; e !== 0; e = table[h]!) {
      if (w[2 * e - 2] === lo && w[2 * e - 1] === hi) return false;
      h = (h + 1) & mask;
    }
    table[h] = c + 1;
    return true;
  }

  #allocate(cap: number): void {
    this.#keys = new BigInt64Array(cap);
    this.#words = new Uint32Array(this.#keys.buffer);
    this.#match = new Uint8Array(cap);
    this.#table = new Int32Array(2 * cap);
    this.#mask = 2 * cap - 1;
  }

  /** Doubles the capacity (the candidates so far kept, the hash rebuilt). */
  #grow(): void {
    const keys = this.#keys;
    const match = this.#match;
    this.#allocate(2 * keys.length);
    this.#keys.set(keys);
    this.#match.set(match);
    const n = this.#count;
    for (let c = 0; c < n; c++) this.#claim(c);
  }
}

function initialCapacity(expected: number): number {
  let cap = MIN_CAPACITY;
  while (cap < Math.min(expected, MAX_INITIAL)) cap *= 2;
  return cap;
}

function hashWords(lo: number, hi: number): number {
  const h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}

/** The keys as (low, high) u32 word pairs, without a copy. */
export function keyWords(keys: BigInt64Array): Uint32Array {
  return new Uint32Array(keys.buffer, keys.byteOffset, 2 * keys.length);
}

/**
 * Candidate sets for retrieves that keep theirs across an await (the rerank on a pool thread), reused once each has
 * answered: a new set per such retrieve was ~34 KB of ArrayBuffers, and that churn, with the other per-request
 * buffers, kept V8 collecting its old generation under load (docs/benchmarks.md, "Where it stands (stop 35)").
 */
export class CandidateSetPool {
  readonly #spare: CandidateSet[] = [];
  readonly #max: number;

  /** `max`: sets kept at most (about the retrieves in flight at once). */
  constructor(max = 64) {
    this.#max = max;
  }

  /** A set for about `expected` candidates, emptied; the caller owns it until `give`. */
  take(expected: number): CandidateSet {
    return this.#spare.pop()?.reset(expected) ?? new CandidateSet(expected);
  }

  /** Returns a set no one reads any more. */
  give(set: CandidateSet): void {
    if (this.#spare.length < this.#max) this.#spare.push(set);
  }

  /** Sets waiting to be taken. */
  get size(): number {
    return this.#spare.length;
  }
}
