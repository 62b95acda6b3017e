/**
 * Keeps the rerank's codes in memory (sq8, pq) laid out in the served model's SID order (config `vectors.layout`
 * "sid"), in the background.
 *
 * Why: a beam retrieve's ~1,250 candidates come from a few dozen posting ranges (the beam's cells and prefixes), but
 * their code rows lie wherever their slots are, in arrival order, so each row is a DRAM miss of its own and the rerank's
 * scan is bound by that latency. Laid out in SID order, the candidates of one range are consecutive rows: at 100K items
 * a 1,250-row sq8 scan took 43-44 µs against 78 (`bench/row-gather.bench.ts --runs 40 --laid-out`, docs/benchmarks.md).
 *
 * How: every TICK_MS it looks at the store's write count. When writes came and then stopped for a tick, or when the
 * rows written since the last layout reach SHARE of the catalog (a catalog written without pause), it takes the served
 * key space's keys in SID order from its live posting index (posting-index.ts `keysInOrder`) and moves the codes into
 * that order (vector-store.ts CodeLayoutTarget), STEP positions per turn of the event loop, so requests are served
 * between steps. Only the memory moves: the codes file keeps slot order (a restart reads it as it is and lays it out
 * again), the vector file and the records are untouched, and scores are the same before, during and after (a pool
 * thread's rerank that a step overlaps scores again: native/src/slot_codes.h).
 */
import { setImmediate as turn } from 'node:timers/promises';
import type { CodeLayoutTarget } from '../vector/vector-store.ts';
import type { Parts } from './service-parts.ts';
import type { Logger } from './vector-state.ts';

const TICK_MS = 500;
/** Rows written since the last layout (share of the catalog) that start one while writes go on. */
const SHARE = 1 / 4;
const MIN_ROWS = 4096;
/** Positions per turn: about 0.2-0.5 ms of row swaps. */
const STEP = 2048;

/** What the layout follows: the store's codes and size, and the served key space's keys in SID order. */
export interface LayoutSource {
  target: CodeLayoutTarget;
  size(): number;
  /** The served key space's version and its keys in SID order; undefined without a live posting index. */
  order(): { version: number; keys: () => BigInt64Array } | undefined;
}

export class CodeLayout {
  #source: LayoutSource;
  #log: Logger;
  #timer: NodeJS.Timeout;
  /** The write count when the last layout was planned (-1: never), and at the last tick. */
  #planned = -1;
  #seen = -1;
  #version = -1;
  #running: Promise<void> | null = null;
  #closed = false;
  /** Layouts finished (tests, logs). */
  done = 0;

  constructor(source: LayoutSource, log: Logger, tickMs = TICK_MS) {
    this.#source = source;
    this.#log = log;
    this.#timer = setInterval(() => this.#tick(), tickMs);
    this.#timer.unref();
  }

  /** The layout in progress, if any (tests). */
  get running(): Promise<void> | null {
    return this.#running;
  }

  /** Lays the codes out now if anything changed since the last layout (tests; `sidx bench` waits on the tick instead). */
  async settle(): Promise<void> {
    await this.#running;
    this.#start(true);
    await this.#running;
  }

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    return this.#running ?? Promise.resolve();
  }

  #tick(): void {
    const now = this.#source.target.changes();
    const idle = now === this.#seen;
    this.#seen = now;
    if (this.#running) return;
    const written = now - this.#planned;
    this.#start(idle || written >= Math.max(MIN_ROWS, SHARE * this.#source.size()));
  }

  #start(due: boolean): void {
    if (this.#closed || this.#running) return;
    const order = this.#source.order();
    if (!order) return;
    const changes = this.#source.target.changes();
    if (!due || (changes === this.#planned && order.version === this.#version)) return;
    const t0 = performance.now();
    const keys = order.keys();
    if (!this.#source.target.plan(keys)) return; // codes not ready (training, reading the file): a later tick
    this.#planned = changes;
    this.#version = order.version;
    const planMs = performance.now() - t0;
    this.#running = this.#steps().then(() => {
      this.done++;
      this.#log.info(`vector codes laid out in SID order: ${keys.length} items (planned in ${planMs.toFixed(0)} ms, moved in ${(performance.now() - t0 - planMs).toFixed(0)} ms)`);
    }, (err: Error) => this.#log.warn(`vector codes layout stopped: ${err.message}`)).finally(() => {
      this.#running = null;
    });
  }

  async #steps(): Promise<void> {
    const { target } = this.#source;
    while (!this.#closed && target.step(STEP) > 0) await turn();
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
      return index && { version: index.model, keys: () => index.keysInOrder() };
    },
  }, p.log);
}
