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

  constructor(leafLevel: boolean, capacity = INITIAL_CAPACITY) {
    this.kids = leafLevel ? null : [];
    if (capacity !== INITIAL_CAPACITY) {
      this.codes = new Int32Array(capacity);
      this.counts = new Uint32Array(capacity);
    }
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

  /**
   * The trie of `n` SIDs given in strictly ascending order (`codes`: n × levels, flat) with their item counts (each
   * at least 1): the nodes are built at their final sizes, with no search or insert per SID (loading from storage).
   */
  static fromSorted(levels: number, codes: ArrayLike<number>, counts: ArrayLike<number>, n: number): SidTrie {
    const trie = new SidTrie(levels);
    for (let i = 0; i < n; i++) {
      if (!(counts[i]! >= 1)) throw new SidxError('SIDX_ERR_STORE', `SID ${i} of ${n} holds ${counts[i]} items`);
      if (i > 0 && compareRows(codes, i - 1, i, levels) >= 0) throw new SidxError('SIDX_ERR_STORE', `SIDs out of order at ${i} of ${n}`);
      trie.#items += counts[i]!;
    }
    if (n > 0) trie.#root = buildNode(codes, counts, levels, 0, 0, n).node;
    trie.#sids = n;
    return trie;
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

function compareRows(codes: ArrayLike<number>, a: number, b: number, levels: number): number {
  for (let l = 0; l < levels; l++) {
    const d = codes[a * levels + l]! - codes[b * levels + l]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** The node at `level` over rows [lo, hi) (sorted, sharing their first `level` codes) and its items. */
function buildNode(codes: ArrayLike<number>, counts: ArrayLike<number>, levels: number, level: number, lo: number, hi: number): { node: TrieNode; items: number } {
  let groups = 0;
  for (let i = lo; i < hi; i++) if (i === lo || codes[i * levels + level] !== codes[(i - 1) * levels + level]) groups++;
  const leaf = level === levels - 1;
  const node = new TrieNode(leaf, groups);
  let items = 0;
  for (let i = lo; i < hi;) {
    const code = codes[i * levels + level]!;
    let end = i + 1;
    while (end < hi && codes[end * levels + level] === code) end++;
    let count: number;
    if (leaf) count = counts[i]!;
    else {
      const kid = buildNode(codes, counts, levels, level + 1, i, end);
      node.kids!.push(kid.node);
      count = kid.items;
    }
    node.codes[node.n] = code;
    node.counts[node.n++] = count;
    items += count;
    i = end;
  }
  return { node, items };
}

/** Collects SIDs in ascending order with their item counts, then builds their trie at once (SidTrie.fromSorted). */
export class SidTrieBuilder {
  readonly levels: number;
  #n = 0;
  #codes: Uint16Array;
  #counts = new Uint32Array(1024);

  constructor(levels: number) {
    this.levels = levels;
    this.#codes = new Uint16Array(1024 * levels);
  }

  /** The next SID, its codes stored as u16 big-endian from `offset` in `bytes`, held by `count` items. */
  pushBigEndian(bytes: Uint8Array, offset: number, count: number): void {
    const L = this.levels;
    if (this.#n === this.#counts.length) {
      const counts = new Uint32Array(this.#n * 2);
      counts.set(this.#counts);
      this.#counts = counts;
      const codes = new Uint16Array(this.#codes.length * 2);
      codes.set(this.#codes);
      this.#codes = codes;
    }
    for (let l = 0, p = offset; l < L; l++, p += 2) this.#codes[this.#n * L + l] = (bytes[p]! << 8) | bytes[p + 1]!;
    this.#counts[this.#n++] = count;
  }

  build(): SidTrie {
    return SidTrie.fromSorted(this.levels, this.#codes, this.#counts, this.#n);
  }
}
