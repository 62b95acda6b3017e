/**
 * Keeps the rerank's codes in memory (sq8, pq) laid out in the served model's SID order (config `vectors.layout`
 * "sid"), in the background.
 *
 * Why: a beam retrieve's ~1,500 candidates come from a few dozen posting ranges (the beam's cells and prefixes), but
 * their code rows lie wherever their slots are, in arrival order, so each row is a DRAM miss of its own and the rerank's
 * scan is bound by that latency. Laid out in SID order, the candidates of one range are consecutive rows: at 100K items
 * a 1,250-row sq8 scan took 43-44 µs against 78 (`bench/row-gather.bench.ts --runs 40 --laid-out`, docs/benchmarks.md).
 *
 * When: every TICK_MS it looks at the store's write count. The first layout (after a start, or once another model is
 * served) comes when writes pause for a tick; later ones when the rows written since the last layout reach IDLE_SHARE
 * of the catalog and writes pause, or BULK_SHARE of it while they go on (a layout costs a pass over every row, so a
 * trickle of writes must not start one each time it pauses).
 *
 * How: it takes the served key space's keys in SID order from its live posting index (`keysInOrderParts`: about
 * CHUNK keys per turn of the event loop), resolves their slots CHUNK keys per turn and moves the codes into that order
 * (vector-store.ts CodeLayoutTarget), STEP_MS of moves per turn, so requests are served in between. Only the memory
 * moves: the codes file keeps slot order (a restart reads it as it is and lays it out again), the vector file and the
 * records are untouched, and scores are the same before, during and after (a pool thread's rerank that a step overlaps
 * scores again: native/src/slot_codes.h).
 */
import { setImmediate as turn } from 'node:timers/promises';
import type { CodeLayoutTarget } from '../vector/vector-store.ts';
import type { PostingIndex } from './posting-index.ts';
import { Collector } from './posting-runs.ts';
import type { Parts } from './service-parts.ts';
import type { Logger } from './vector-state.ts';

const TICK_MS = 500;
/** Rows written since the last layout, as a share of the catalog, that start one once writes pause ... */
const IDLE_SHARE = 1 / 64;
/** ... and while they go on. */
const BULK_SHARE = 1 / 4;
const MIN_ROWS = 64;
/**
 * Row moves per native call, and the time a turn of the event loop spends on them: a step's swaps are cache misses
 * that grow with the catalog (2,048 positions took 0.6-1 ms at 1M items), and a request that arrives meanwhile waits
 * for the turn to end.
 */
const STEP = 256;
const STEP_MS = 0.25;
/** Keys taken from the posting index, and keys whose slots are resolved, per turn while a layout is planned. */
const CHUNK = 65_536;

/** What the layout follows: the store's codes and size, and the served key space's keys in SID order. */
export interface LayoutSource {
  target: CodeLayoutTarget;
  size(): number;
  /**
   * The served key space's version and its keys in SID order (asked for once the codes are ready), as
   * `keysInOrderParts` gives them; undefined without a live posting index.
   */
  order(): { version: number; keys: (partRows: number) => Generator<void, BigInt64Array> } | undefined;
}

/**
 * The index's live keys in (SID, key) order, one first-level code after the other (`PostingIndex.visit`), pausing
 * (a `yield`) once about `partRows` more are collected; the generator's value is all of them. A caller that yields its
 * thread between parts never holds it for a pass over the whole index (57 ms at 1M items after an online ingest, whose
 * delta and dead rows each visit merges). The index may change between parts: each part is its codes' rows at that
 * moment, so a key whose SID changed meanwhile may be missing or come twice (the layout leaves it where it is, or places
 * it once).
 */
export function* keysInOrderParts(index: Pick<PostingIndex, 'count' | 'firstCodeEnd' | 'visit'>, partRows: number): Generator<void, BigInt64Array> {
  const out = new Collector(index.count);
  const prefix = new Int32Array(1);
  let since = 0;
  for (let code = 0; code < index.firstCodeEnd; code++) {
    prefix[0] = code;
    index.visit(prefix, 0, 1, Number.MAX_SAFE_INTEGER, out);
    if (out.count - since >= partRows) {
      since = out.count;
      yield;
    }
  }
  return out.keys();
}

export class CodeLayout {
  #source: LayoutSource;
  #log: Logger;
  #timer: NodeJS.Timeout;
  /** The write count when the last layout was planned, and at the last tick. */
  #planned = 0;
  #seen = -1;
  /** The key space laid out last (-1: none yet). */
  #version = -1;
  #running: Promise<void> | null = null;
  #closed = false;
  #pending = 0;
  /** Layouts finished (tests, logs). */
  done = 0;

  constructor(source: LayoutSource, log: Logger, tickMs = TICK_MS) {
    this.#source = source;
    this.#log = log;
    this.#timer = setInterval(() => this.#tick(), tickMs);
    this.#timer.unref();
  }

  /** The layout in progress, if any. */
  get running(): Promise<void> | null {
    return this.#running;
  }

  /** Items the layout in progress has still to place (all of them while it is planned); 0 when none runs. */
  get pending(): number {
    return this.#pending;
  }

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    return this.#running ?? Promise.resolve();
  }

  #tick(): void {
    const { target } = this.#source;
    const now = target.changes();
    const idle = now === this.#seen;
    this.#seen = now;
    if (this.#closed || this.#running) return;
    const order = this.#source.order();
    if (!order) return;
    const written = now - this.#planned;
    const size = this.#source.size();
    const due = order.version !== this.#version
      ? idle
      : (idle && written >= Math.max(MIN_ROWS, IDLE_SHARE * size)) || written >= Math.max(MIN_ROWS, BULK_SHARE * size);
    if (!due || !target.ready()) return; // codes not ready (before training, while the file is read): a later tick
    this.#planned = now;
    this.#version = order.version;
    this.#running = this.#layOut(order.keys).then((items) => {
      if (items > 0) this.done++;
    }, (err: Error) => this.#log.warn(`vector codes layout stopped: ${err.message}`)).finally(() => {
      this.#running = null;
      this.#pending = 0;
    });
  }

  /**
   * The keys in SID order (copied out of the posting index) and their slots, CHUNK keys per turn of the event loop
   * (the parts that grow with the catalog: 1M keys are tens of ms), then the moves in steps. Returns the items
   * laid out (0 when it stopped: closed, or the codes were reset meanwhile).
   */
  async #layOut(keysInOrder: (partRows: number) => Generator<void, BigInt64Array>): Promise<number> {
    const { target } = this.#source;
    const t0 = performance.now();
    let longest = 0;
    let from = t0;
    const yieldTurn = async () => {
      longest = Math.max(longest, performance.now() - from);
      await turn();
      from = performance.now();
    };
    this.#pending = this.#source.size(); // the codes held, until the keys are known
    const parts = keysInOrder(CHUNK);
    let part = parts.next();
    for (; !part.done; part = parts.next()) {
      await yieldTurn();
      if (this.#closed) return 0;
    }
    const keys = part.value;
    this.#pending = keys.length;
    await yieldTurn();
    const slots = new Int32Array(keys.length);
    for (let at = 0; at < keys.length; at += CHUNK) {
      target.slotsOf(keys.subarray(at, at + CHUNK), slots.subarray(at, at + CHUNK));
      await yieldTurn();
      if (this.#closed) return 0;
    }
    if (!target.ready()) return 0; // reset meanwhile (a rebuild): its writes start the next layout
    target.plan(slots);
    const t1 = performance.now();
    longest = Math.max(longest, t1 - from);
    await this.#steps();
    if (this.#closed) return 0;
    this.#log.info(`vector codes laid out in SID order: ${keys.length} items (planned in ${(t1 - t0).toFixed(0)} ms, its longest turn `
      + `${longest.toFixed(1)} ms; moved in ${(performance.now() - t1).toFixed(0)} ms)`);
    return keys.length;
  }

  async #steps(): Promise<void> {
    const { target } = this.#source;
    while (!this.#closed) {
      const end = performance.now() + STEP_MS;
      let left = target.step(STEP);
      while (left > 0 && performance.now() < end) left = target.step(STEP);
      this.#pending = left;
      if (left === 0) return;
      await turn();
    }
  }
}

/**
 * The layout of a service's codes, reading its parts at each tick (the served model changes on a swap); null where
 * there is nothing to lay out: f32 storage, config `vectors.layout` "arrival", or an offline load (`sidx index`).
 */
export function codeLayoutOf(p: Pick<Parts, 'config' | 'log' | 'vectors' | 'postings' | 'model'>, offline: boolean): CodeLayout | null {
  const target = p.vectors.store.layout;
  if (!target || offline || p.config.vectors.layout !== 'sid') return null;
  return new CodeLayout({
    target,
    size: () => p.vectors.store.ntotal,
    order: () => {
      const index = p.postings.index(p.model.version);
      return index && { version: index.model, keys: (partRows: number) => keysInOrderParts(index, partRows) };
    },
  }, p.log);
}
