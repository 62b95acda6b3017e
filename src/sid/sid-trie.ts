/**
 * In-memory occupancy trie of one model's SIDs: for every occupied prefix, its occupied next codes (ascending)
 * with the number of items under each. It answers "which codes extend this prefix towards an item" in
 * O(L log K) and lists every occupied SID in lexicographic order without touching storage.
 *
 * Each node keeps two parallel growable typed arrays (codes ascending, item counts) and, above the last level,
 * one child node per code. A node's count for code c is the number of items whose SID starts with its prefix + c.
 * Memory: one node per occupied prefix of length 0..L-1, 8 bytes per occupied (prefix, code) pair plus slack.
 */
import { SidxError } from '../errors.ts';

const INITIAL_CAPACITY = 4;

class TrieNode {
  n = 0;
  codes = new Int32Array(INITIAL_CAPACITY);
  counts = new Uint32Array(INITIAL_CAPACITY);
  /** null on the last level. */
  kids: TrieNode[] | null;
  /** What `next` answers for this node, shared until the node changes (then rebuilt on the next read). */
  snap: NextCodes | null = null;

  constructor(leafLevel: boolean) {
    this.kids = leafLevel ? null : [];
  }

  /** Index of `code`, or -(insertion point) - 1. */
  find(code: number): number {
    const codes = this.codes;
    let lo = 0;
    let hi = this.n - 1;
    // Appends in code order (a load from sorted storage) hit the last slot: check it first.
    if (hi >= 0 && codes[hi]! < code) return -(hi + 1) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = codes[mid]!;
      if (c < code) lo = mid + 1;
      else if (c > code) hi = mid - 1;
      else return mid;
    }
    return -lo - 1;
  }

  insert(at: number, code: number, kid: TrieNode | null): void {
    if (this.n === this.codes.length) {
      const codes = new Int32Array(this.n * 2);
      codes.set(this.codes);
      const counts = new Uint32Array(this.n * 2);
      counts.set(this.counts);
      this.codes = codes;
      this.counts = counts;
    }
    this.codes.copyWithin(at + 1, at, this.n);
    this.counts.copyWithin(at + 1, at, this.n);
    this.codes[at] = code;
    this.counts[at] = 0;
    if (this.kids && kid) this.kids.splice(at, 0, kid);
    this.n++;
  }

  remove(at: number): void {
    this.codes.copyWithin(at, at + 1, this.n);
    this.counts.copyWithin(at, at + 1, this.n);
    this.kids?.splice(at, 1);
    this.n--;
  }
}

export interface NextCodes {
  codes: Int32Array;
  counts: Uint32Array;
}

const EMPTY_NEXT: NextCodes = Object.freeze({ codes: new Int32Array(0), counts: new Uint32Array(0) });

export class SidTrie {
  readonly levels: number;
  #root: TrieNode;
  #sids = 0;
  #items = 0;

  constructor(levels: number) {
    if (!Number.isInteger(levels) || levels < 1) throw new SidxError('SIDX_ERR_INVALID_INPUT', `levels must be a positive integer, got ${levels}`, { field: 'levels' });
    this.levels = levels;
    this.#root = new TrieNode(levels === 1);
  }

  /** Occupied SIDs (distinct SIDs holding at least one item). */
  get size(): number {
    return this.#sids;
  }

  /** Items counted over all SIDs. */
  get items(): number {
    return this.#items;
  }

  /**
   * Adds `delta` items (negative: removes) at SID `codes` (L codes). Throws, changing nothing, when that would
   * leave a SID with a negative count.
   */
  add(codes: ArrayLike<number>, delta: number): void {
    if (codes.length !== this.levels) throw new SidxError('SIDX_ERR_INVALID_INPUT', `a SID has ${this.levels} codes, got ${codes.length}`, { field: 'codes' });
    if (delta === 0) return;
    if (delta < 0 && this.count(codes) < -delta) {
      throw new SidxError('SIDX_ERR_STORE', `SID ${Array.from(codes).join('-')} holds ${this.count(codes)} items, cannot remove ${-delta}`);
    }
    this.#apply(this.#root, codes, 0, delta);
    this.#items += delta;
  }

  #apply(node: TrieNode, codes: ArrayLike<number>, level: number, delta: number): void {
    node.snap = null;
    const code = codes[level]!;
    let i = node.find(code);
    const last = level === this.levels - 1;
    if (i < 0) {
      i = -i - 1;
      node.insert(i, code, last ? null : new TrieNode(level + 1 === this.levels - 1));
      if (last) this.#sids++;
    }
    if (!last) this.#apply(node.kids![i]!, codes, level + 1, delta);
    const count = node.counts[i]! + delta;
    if (count === 0) {
      node.remove(i);
      if (last) this.#sids--;
    } else {
      node.counts[i] = count;
    }
  }

  /** The node of the first `length` codes of `prefix`. */
  #nodeAt(prefix: ArrayLike<number>, length: number): TrieNode | undefined {
    let node: TrieNode | undefined = this.#root;
    for (let l = 0; l < length && node; l++) {
      const i = node.find(prefix[l]!);
      node = i < 0 || !node.kids ? undefined : node.kids[i];
    }
    return node;
  }

  /** Items at exactly SID `codes`. */
  count(codes: ArrayLike<number>): number {
    if (codes.length !== this.levels) return 0;
    const node = this.#nodeAt(codes, this.levels - 1);
    if (!node) return 0;
    const i = node.find(codes[this.levels - 1]!);
    return i < 0 ? 0 : node.counts[i]!;
  }

  /**
   * The occupied codes extending `prefix` (0..L-1 codes), ascending, with item counts; empty arrays past L-1 or
   * under an unoccupied prefix. Read-only: the object is shared by every read of that prefix until a write under
   * it, so callers may cache what they derive from it by identity (a WeakMap), and must not modify it.
   */
  next(prefix: ArrayLike<number>): NextCodes {
    const node = prefix.length < this.levels ? this.#nodeAt(prefix, prefix.length) : undefined;
    if (!node) return EMPTY_NEXT;
    node.snap ??= { codes: node.codes.slice(0, node.n), counts: node.counts.slice(0, node.n) };
    return node.snap;
  }

  /** Every occupied SID in lexicographic order, L codes each, written into `out` from index 0; returns size. */
  writeSids(out: { [i: number]: number; length: number }): number {
    const L = this.levels;
    if (out.length < this.#sids * L) throw new SidxError('SIDX_ERR_INVALID_INPUT', `output holds ${out.length} codes, need ${this.#sids * L}`, { field: 'out' });
    const path = new Array<TrieNode>(L);
    const at = new Int32Array(L);
    let p = 0;
    let level = 0;
    path[0] = this.#root;
    at[0] = 0;
    while (level >= 0) {
      const node = path[level]!;
      const i = at[level]!;
      if (i >= node.n) {
        level--;
        if (level >= 0) at[level]!++;
        continue;
      }
      if (level === L - 1) {
        const base = p * L;
        for (let l = 0; l < L - 1; l++) out[base + l] = path[l]!.codes[at[l]!]!;
        out[base + L - 1] = node.codes[i]!;
        p++;
        at[level]!++;
      } else {
        path[level + 1] = node.kids![i]!;
        at[level + 1] = 0;
        level++;
      }
    }
    return p;
  }
}
