/**
 * An in-memory copy of one key space's SID postings, answering the catalog's three candidate scans (`exact`,
 * `prefix`, `hamming1`) with the same results in the same order, without an LMDB cursor per call. Batched
 * retrieval (retrieve-batch.ts) gathers thousands of queries' candidates from it: on instruments a beam query
 * opens a few hundred scans, and each lmdb-js range read costs more than the scan itself.
 *
 * Orders, as in the catalog (store/catalog-scan.ts): `exact` ascending key; `prefix` SID order then key;
 * `hamming1` last position first, then the differing code, then key. A copy of the postings when `build` runs:
 * later writes are not seen.
 */
import type { Catalog, Neighbour } from '../store/catalog.ts';
import type { CandidateSource } from './candidates.ts';

export class PostingSnapshot implements CandidateSource {
  readonly model: number;
  readonly levels: number;
  /** Items in (SID, key) order: `codes` is count × levels. */
  readonly codes: Int32Array;
  readonly keys: BigInt64Array;
  readonly ids: readonly string[];
  /** Keyed by Number(key) when every key is below 2^53 (a number-keyed map is faster), else by the bigint. */
  #rowOfKey = new Map<number | bigint, number>();
  #numberKeys: boolean;
  /** Per position i: rows ordered by (codes without i, code i, key), the catalog's rotated Hamming-1 key space. */
  #rotated: Int32Array[];

  private constructor(model: number, levels: number, codes: Int32Array, keys: BigInt64Array, ids: string[]) {
    this.model = model;
    this.levels = levels;
    this.codes = codes;
    this.keys = keys;
    this.ids = ids;
    this.#numberKeys = keys.every((k) => k <= BigInt(Number.MAX_SAFE_INTEGER));
    keys.forEach((k, r) => this.#rowOfKey.set(this.#numberKeys ? Number(k) : k, r));
    this.#rotated = Array.from({ length: levels }, (_, i) => this.#sortedRows(i));
  }

  /**
   * The postings of key space `model` (the catalog's active one, whose SIDs item reads resolve to), in the
   * catalog's own (SID, key) order, with each item's id and SID.
   */
  static build(catalog: Catalog, model: number, levels: number): PostingSnapshot {
    const keys = catalog.prefix(model, new Int32Array(0), Math.max(1, catalog.count));
    const codes = new Int32Array(keys.length * levels);
    const ids = Array.from(keys, (key, r) => {
      const rec = catalog.getByKey(key);
      if (rec?.model !== model || rec.codes.length !== levels) {
        throw new Error(`posting snapshot: item key ${key} has no ${levels}-level SID in key space ${model} (not the active one?)`);
      }
      codes.set(rec.codes, r * levels);
      return rec.id;
    });
    return new PostingSnapshot(model, levels, codes, keys, ids);
  }

  get count(): number {
    return this.keys.length;
  }

  /** Row of an internal key, or -1. */
  rowOf(key: bigint): number {
    return this.#rowOfKey.get(this.#numberKeys ? Number(key) : key) ?? -1;
  }

  /** SID of a row (a view, not a copy). */
  sid(row: number): Int32Array {
    return this.codes.subarray(row * this.levels, (row + 1) * this.levels);
  }

  exact(model: number, codes: Int32Array, limit: number): BigInt64Array {
    this.#check(model);
    return this.prefix(model, codes, limit);
  }

  prefix(model: number, codesPrefix: Int32Array, limit: number): BigInt64Array {
    this.#check(model);
    const lo = this.#bound(codesPrefix, false);
    const hi = this.#bound(codesPrefix, true);
    return this.keys.slice(lo, Math.min(hi, lo + Math.max(0, limit)));
  }

  /** First row whose SID prefix is >= `p` (> `p` when `after`). */
  #bound(p: Int32Array, after: boolean): number {
    const L = this.levels;
    const codes = this.codes;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      let d = 0;
      for (let j = 0; j < p.length && d === 0; j++) d = codes[mid * L + j]! - p[j]!;
      if (d < 0 || (after && d === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  hamming1(model: number, codes: Int32Array, limit: number): Neighbour[] {
    this.#check(model);
    const L = this.levels;
    const out: Neighbour[] = [];
    for (let i = L - 1; i >= 0 && out.length < limit; i--) {
      const rows = this.#rotated[i]!;
      // Rows sharing every code but position i's form one range of the rotated order.
      const cmp = (r: number) => {
        for (let j = 0; j < L - 1; j++) {
          const d = this.#rotatedCode(r, i, j) - codes[j < i ? j : j + 1]!;
          if (d !== 0) return d;
        }
        return 0;
      };
      const lo = lowerBound(rows.length, (x) => cmp(rows[x]!) < 0);
      const hi = lowerBound(rows.length, (x) => cmp(rows[x]!) <= 0);
      for (let x = lo; x < hi && out.length < limit; x++) {
        const r = rows[x]!;
        const code = this.codes[r * L + i]!;
        if (code === codes[i]) continue;
        const neighbour = codes.slice();
        neighbour[i] = code;
        out.push({ key: this.keys[r]!, codes: neighbour, position: i });
      }
    }
    return out;
  }

  #check(model: number): void {
    if (model !== this.model) throw new Error(`posting snapshot of key space ${this.model} asked for key space ${model}`);
  }

  /** Code j of row r with position i moved last. */
  #rotatedCode(r: number, i: number, j: number): number {
    return this.codes[r * this.levels + (j < i ? j : j + 1 < this.levels ? j + 1 : i)]!;
  }

  /** Rows in position i's rotated order, then key order. */
  #sortedRows(i: number): Int32Array {
    const L = this.levels;
    const rows = Array.from({ length: this.count }, (_, r) => r);
    rows.sort((a, b) => {
      for (let j = 0; j < L; j++) {
        const d = this.#rotatedCode(a, i, j) - this.#rotatedCode(b, i, j);
        if (d !== 0) return d;
      }
      return this.keys[a]! < this.keys[b]! ? -1 : this.keys[a]! > this.keys[b]! ? 1 : 0;
    });
    return Int32Array.from(rows);
  }
}

/** First index in [0, n) where `before` is false (`before` is true on a prefix of the range). */
function lowerBound(n: number, before: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
