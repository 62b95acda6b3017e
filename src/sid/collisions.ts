/**
 * Collision handling for full SIDs, shared by model export (offline, whole catalog) and the service's upsert
 * (online, one batch at a time against the catalog).
 *
 * Strategies:
 *   none    codes pass through unchanged.
 *   cap     FORGE: at most `cap` items per full SID. An item whose SID is full moves to the nearest alternative
 *           last-level code (same prefix c1..c_{L-1}) among the encoder's top-M candidates whose SID has room;
 *           if none has room it keeps its SID and is counted as unresolved.
 *   suffix  TIGER/GRID: one level is appended holding the item's rank among the items that share its SID.
 *
 * Stability: an assigned SID never changes; new items only look at what is already occupied. Items of a batch
 * are assigned one after another, each assignment counting at once, so resolving A+B in one batch gives the same
 * SIDs as resolving A, recording it, then resolving B: batch boundaries never change the outcome. (FORGE's
 * offline script instead seats every item that fits its own SID before moving any; that needs the whole
 * catalog up front and so cannot hold for incremental upserts.)
 */
import { SidxError } from '../errors.ts';
import { MAX_CODE, MAX_LEVELS } from './codec.ts';

export type CollisionStrategy = { kind: 'none' } | { kind: 'cap'; cap: number } | { kind: 'suffix' };

/** FORGE's cap of items per full SID. */
export const DEFAULT_SID_CAP = 5;

/** Whether resolving under this strategy reads the encoder's top-M candidates (only the cap moves items to them). */
export function readsTopM(kind: CollisionStrategy['kind']): boolean {
  return kind === 'cap';
}

/**
 * How many items already hold a full SID (from the catalog, or from earlier batches). `sid` is a scratch array
 * that the caller reuses: read it, never keep it. For the suffix strategy `count(prefix)` must return the next
 * unused suffix under the L-code prefix: the number of items there in an append-only catalog, or max suffix + 1
 * once items can be deleted (the last key of a prefix scan holds it).
 */
export interface SidOccupancy {
  count(sid: Int32Array): number;
}

export interface CollisionBatch {
  /** n × levels codes, row-major. */
  codes: Int32Array;
  /** n × levels × topM candidate codes per level, best first (only the last level is used); < 0 = padding. */
  topCodes?: Int32Array;
  /** Distances of topCodes, same layout; when given they must be non-decreasing along each candidate list. */
  topDistances?: Float32Array;
  n: number;
  levels: number;
  /** Candidates per level; defaults to topCodes.length / (n × levels). */
  topM?: number;
}

export interface CollisionResult {
  /** n × levels codes, or n × (levels + 1) for the suffix strategy. */
  codes: Int32Array;
  /** Items that took an alternative last-level code. */
  moved: number;
  /** Items that kept a full SID because no candidate had room (their SID now exceeds the cap). */
  unresolved: number;
}

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

/** Murmur3's 32-bit finaliser over a multiplicative combine of the codes: every code bit reaches the low bits. */
function hashRow(codes: Int32Array, offset: number, width: number): number {
  let h = 0x9747b28c;
  for (let j = 0; j < width; j++) {
    h = Math.imul(h ^ codes[offset + j], 0x9e3779b1);
    h = (h << 13) | (h >>> 19);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Counts of fixed-width code rows (full SIDs) in an open-addressing hash table over typed arrays: no allocation
 * per row, any number of levels, and no 2^24-entry ceiling as with a JS Map. Each distinct row gets a dense id
 * 0..size-1 in first-seen order.
 */
export class SidCounter {
  readonly width: number;
  #rows: Int32Array;
  #counts: Int32Array;
  #slots: Int32Array; // id + 1, 0 = empty; length is a power of two, kept at most half full
  #size = 0;

  constructor(width: number, expectedDistinct = 16) {
    if (!Number.isInteger(width) || width < 1 || width > MAX_LEVELS + 1) {
      throw invalid(`SID width must be an integer in 1..${MAX_LEVELS + 1}, got ${width}`, 'levels');
    }
    this.width = width;
    const capacity = Math.max(16, Math.ceil(expectedDistinct));
    this.#rows = new Int32Array(capacity * width);
    this.#counts = new Int32Array(capacity);
    this.#slots = new Int32Array(2 ** Math.ceil(Math.log2(capacity * 2)));
  }

  /** Number of distinct rows seen. */
  get size(): number {
    return this.#size;
  }

  /** Slot holding the row at codes[offset..offset+width), or the empty slot where it would go. */
  #probe(codes: Int32Array, offset: number): number {
    const w = this.width;
    const slots = this.#slots;
    const rows = this.#rows;
    const mask = slots.length - 1;
    let slot = hashRow(codes, offset, w) & mask;
    for (;;) {
      const entry = slots[slot];
      if (entry === 0) return slot;
      const base = (entry - 1) * w;
      let j = 0;
      while (j < w && rows[base + j] === codes[offset + j]) j++;
      if (j === w) return slot;
      slot = (slot + 1) & mask;
    }
  }

  /** Id of the row at codes[offset..offset+width), or -1 when it was never added. */
  find(codes: Int32Array, offset = 0): number {
    return this.#slots[this.#probe(codes, offset)] - 1;
  }

  /** Count of the row at codes[offset..offset+width) (0 when absent). */
  count(codes: Int32Array, offset = 0): number {
    const id = this.find(codes, offset);
    return id < 0 ? 0 : this.#counts[id];
  }

  /** Adds `times` to the row's count (inserting it, even with times = 0); returns the row's id. */
  add(codes: Int32Array, offset = 0, times = 1): number {
    let slot = this.#probe(codes, offset);
    const entry = this.#slots[slot];
    if (entry !== 0) {
      this.#counts[entry - 1] += times;
      return entry - 1;
    }
    const id = this.#size;
    if (id === this.#counts.length) this.#growRows();
    if ((id + 1) * 2 > this.#slots.length) {
      this.#rehash(this.#slots.length * 2);
      slot = this.#probe(codes, offset);
    }
    const rows = this.#rows;
    for (let j = 0, base = id * this.width; j < this.width; j++) rows[base + j] = codes[offset + j];
    this.#counts[id] = times;
    this.#slots[slot] = id + 1;
    this.#size = id + 1;
    return id;
  }

  /** Adds `times` to the row with this id. */
  addAt(id: number, times = 1): void {
    this.#counts[id] += times;
  }

  /** Count of the row with this id. */
  countAt(id: number): number {
    return this.#counts[id];
  }

  /** Counts indexed by id: a view, valid until the next insertion. */
  counts(): Int32Array {
    return this.#counts.subarray(0, this.#size);
  }

  /** The codes of the row with this id: a view, valid until the next insertion. */
  rowAt(id: number): Int32Array {
    return this.#rows.subarray(id * this.width, (id + 1) * this.width);
  }

  #growRows(): void {
    const capacity = this.#counts.length * 2;
    const rows = new Int32Array(capacity * this.width);
    rows.set(this.#rows);
    this.#rows = rows;
    const counts = new Int32Array(capacity);
    counts.set(this.#counts);
    this.#counts = counts;
  }

  #rehash(slotCount: number): void {
    const slots = new Int32Array(slotCount);
    const mask = slotCount - 1;
    const w = this.width;
    for (let id = 0; id < this.#size; id++) {
      let slot = hashRow(this.#rows, id * w, w) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id + 1;
    }
    this.#slots = slots;
  }
}

/** In-memory occupancy for offline export: record each batch's result with `addRows` before the next batch. */
export class MapOccupancy extends SidCounter implements SidOccupancy {
  /** `levels` = L, the width of the SIDs counted (for the suffix strategy: the L-code prefix). */
  constructor(levels: number, expectedDistinct?: number) {
    super(levels, expectedDistinct);
  }

  override count(sid: Int32Array, offset = 0): number {
    if (offset === 0 && sid.length !== this.width) throw invalid(`SID has ${sid.length} codes, expected ${this.width}`, 'sid');
    return super.count(sid, offset);
  }

  override add(sid: Int32Array, offset = 0, times = 1): number {
    if (offset === 0 && sid.length !== this.width) throw invalid(`SID has ${sid.length} codes, expected ${this.width}`, 'sid');
    return super.add(sid, offset, times);
  }

  /** Records n rows of `stride` codes each (stride ≥ levels; a suffix result has stride L+1), counting their first L codes. */
  addRows(codes: Int32Array, n: number, stride = this.width): void {
    if (stride < this.width || codes.length !== n * stride) {
      throw invalid(`codes has ${codes.length} values, expected ${n} rows of ${stride} (stride ≥ ${this.width})`, 'codes');
    }
    for (let i = 0; i < n; i++) super.add(codes, i * stride, 1);
  }
}

function checkBatch(batch: CollisionBatch): void {
  const { codes, n, levels } = batch;
  if (!Number.isInteger(levels) || levels < 1 || levels > MAX_LEVELS) throw invalid(`levels must be an integer in 1..${MAX_LEVELS}`, 'levels');
  if (!Number.isInteger(n) || n < 0) throw invalid(`n must be a non-negative integer, got ${n}`, 'n');
  if (!(codes instanceof Int32Array) || codes.length !== n * levels) {
    throw invalid(`codes must be an Int32Array of n × levels = ${n * levels} values`, 'codes');
  }
  for (let k = 0; k < codes.length; k++) {
    if (codes[k] < 0 || codes[k] > MAX_CODE) {
      throw invalid(`code ${codes[k]} of item ${Math.floor(k / levels)} is outside 0..${MAX_CODE}`, `codes[${k}]`);
    }
  }
}

/** topM, after checking topCodes/topDistances against the batch. 0 when there are no candidates. */
function checkCandidates(batch: CollisionBatch): number {
  const { topCodes, topDistances, n, levels } = batch;
  if (topCodes === undefined) {
    if (topDistances !== undefined) throw invalid('topDistances given without topCodes', 'topDistances');
    return 0;
  }
  const perRow = n * levels;
  const m = batch.topM ?? (perRow === 0 ? 0 : topCodes.length / perRow);
  if (!Number.isInteger(m) || m < 0 || topCodes.length !== perRow * m) {
    throw invalid(`topCodes must hold n × levels × topM values, got ${topCodes.length} for n=${n}, levels=${levels}`, 'topCodes');
  }
  if (topDistances !== undefined) {
    if (topDistances.length !== topCodes.length) throw invalid('topDistances must have the layout of topCodes', 'topDistances');
    for (let i = 0; i < n; i++) {
      const base = (i * levels + levels - 1) * m;
      for (let r = 1; r < m; r++) {
        if (!(topDistances[base + r] >= topDistances[base + r - 1])) {
          throw invalid(`candidate distances of item ${i} are not sorted best first`, `topDistances[${base + r}]`);
        }
      }
    }
  }
  return m;
}

/**
 * Resolves collisions of a batch against what is already occupied. The occupancy is only read; record the
 * returned codes in it (MapOccupancy.addRows, or the catalog's commit) before resolving the next batch.
 */
export function resolveCollisions(
  strategy: CollisionStrategy,
  batch: CollisionBatch,
  occupancy: SidOccupancy,
): CollisionResult {
  checkBatch(batch);
  switch (strategy.kind) {
    case 'none':
      return { codes: batch.codes.slice(), moved: 0, unresolved: 0 };
    case 'cap':
      if (!Number.isInteger(strategy.cap) || strategy.cap < 1) {
        throw invalid(`cap must be a positive integer, got ${strategy.cap}`, 'strategy.cap');
      }
      return resolveCap(strategy.cap, batch, checkCandidates(batch), occupancy);
    case 'suffix':
      return resolveSuffix(batch, occupancy);
    default:
      throw invalid(`unknown collision strategy ${JSON.stringify((strategy as { kind: unknown }).kind)}`, 'strategy.kind');
  }
}

/**
 * Batch-local view of the occupancy: each SID touched is looked up in `occupancy` once (a catalog lookup may
 * cost a range scan), then counted here as the batch assigns items to it.
 */
class BatchOccupancy {
  readonly #seen: SidCounter;
  readonly #occupancy: SidOccupancy;

  constructor(levels: number, expected: number, occupancy: SidOccupancy) {
    this.#seen = new SidCounter(levels, expected);
    this.#occupancy = occupancy;
  }

  /** Id of `sid` in the batch table (fetching its base count on first sight). */
  idOf(sid: Int32Array): number {
    const id = this.#seen.find(sid);
    if (id >= 0) return id;
    const base = this.#occupancy.count(sid);
    if (!Number.isInteger(base) || base < 0) throw new SidxError('SIDX_ERR_INTERNAL', `occupancy count must be a non-negative integer, got ${base}`);
    return this.#seen.add(sid, 0, base);
  }

  countAt(id: number): number {
    return this.#seen.countAt(id);
  }

  addAt(id: number): void {
    this.#seen.addAt(id, 1);
  }
}

function resolveCap(cap: number, batch: CollisionBatch, m: number, occupancy: SidOccupancy): CollisionResult {
  const { n, levels } = batch;
  const codes = batch.codes.slice();
  const top = batch.topCodes;
  const last = levels - 1;
  const sid = new Int32Array(levels);
  const seen = new BatchOccupancy(levels, n, occupancy);
  let moved = 0;
  let unresolved = 0;
  for (let i = 0; i < n; i++) {
    const row = i * levels;
    for (let l = 0; l < levels; l++) sid[l] = codes[row + l];
    const original = sid[last];
    const originalId = seen.idOf(sid);
    if (seen.countAt(originalId) < cap) {
      seen.addAt(originalId);
      continue;
    }
    let placed = false;
    if (top !== undefined) {
      const base = (row + last) * m;
      for (let r = 0; r < m; r++) {
        const candidate = top[base + r];
        if (candidate < 0 || candidate === original) continue;
        if (candidate > MAX_CODE) throw invalid(`candidate code ${candidate} of item ${i} exceeds ${MAX_CODE}`, `topCodes[${base + r}]`);
        sid[last] = candidate;
        const id = seen.idOf(sid);
        if (seen.countAt(id) < cap) {
          seen.addAt(id);
          codes[row + last] = candidate;
          placed = true;
          break;
        }
      }
    }
    if (placed) {
      moved++;
    } else {
      seen.addAt(originalId);
      unresolved++;
    }
  }
  return { codes, moved, unresolved };
}

function resolveSuffix(batch: CollisionBatch, occupancy: SidOccupancy): CollisionResult {
  const { n, levels, codes: input } = batch;
  if (levels === MAX_LEVELS) throw invalid(`the suffix strategy adds a level; SIDs already have the maximum of ${MAX_LEVELS}`, 'levels');
  const width = levels + 1;
  const codes = new Int32Array(n * width);
  const sid = new Int32Array(levels);
  const seen = new BatchOccupancy(levels, n, occupancy);
  for (let i = 0; i < n; i++) {
    for (let l = 0; l < levels; l++) sid[l] = input[i * levels + l];
    const id = seen.idOf(sid);
    const suffix = seen.countAt(id);
    if (suffix > MAX_CODE) throw invalid(`SID of item ${i} already holds ${suffix} items; a suffix code must be ≤ ${MAX_CODE}`, `codes[${i * levels}]`);
    seen.addAt(id);
    codes.set(sid, i * width);
    codes[i * width + levels] = suffix;
  }
  return { codes, moved: 0, unresolved: 0 };
}
