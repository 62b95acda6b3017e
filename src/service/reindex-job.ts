/**
 * A re-index job: moves the catalog to another model with no downtime.
 *
 *   encode   the target model's encoder runs over every item in internal-key order, batch by batch; each batch
 *            is one LMDB transaction writing SIDs into the target's own key space (catalog-spaces.ts), then the
 *            job's cursor is recorded in SQLite. Meanwhile the active model serves, and upserts write both key
 *            spaces (so an item written after the scan passed it is not missed, nor re-encoded stale).
 *   report   a read pass comparing each item's old and new SID (how many changed) and, if asked, writing the
 *            old -> new mapping file (CSV: id,old_sid,new_sid) under <dataDir>/reindex/.
 *   swap     in one step (between requests: ReadGate, and between writes: WriteLock): the catalog serves the
 *            target's key space (one LMDB commit), the registry marks it active, the service switches encoders.
 *   drop     the old key space is removed batch by batch (records move to the new SID, old postings go), in
 *            small transactions committed off the main thread, with pauses between them: requests go on.
 *   cleanup  after a cancel or a failure before the swap: the target's key space is removed instead.
 *
 * A crash resumes at the next start from the phase and cursor recorded last; a batch replayed after a crash
 * changes nothing (existing SIDs are kept). Progress (processed/total) is per phase; a finished job keeps the
 * count of its last phase, and the encode phase's rate (result.encodeItemsPerSecond).
 */
import { join } from 'node:path';
import { SidxError } from '../errors.ts';
import type { Catalog } from '../store/catalog.ts';
import type { ControlPlane } from '../store/control-plane.ts';
import type { EncodeOptions, EncodeResult } from '../tokenizer/encoder-pool.ts';
import type { SidxMetrics } from './metrics.ts';
import { closeWhenIdle, type ActiveModel, type ModelSpace } from './model-space.ts';
import type { Logger } from './vector-state.ts';
import { jobView, type JobView } from './job-view.ts';
import { compareSids } from './reindex-report.ts';
import type { WriteLock } from './write-lock.ts';

export { jobView, type JobView, type Stability } from './job-view.ts';

export type ReindexPhase = 'encode' | 'report' | 'swap' | 'drop' | 'cleanup' | 'done';

export interface ReindexParams {
  /** Target model id. */
  model: string;
  batchSize: number;
  /** Throttle (items per second over the phase), or null. */
  maxItemsPerSecond: number | null;
  /** Write the old -> new SID mapping file. */
  mapping: boolean;
  fromModel: string;
  fromVersion: number;
  toVersion: number;
}

/** What the job needs from the service. */
export interface ReindexHost {
  readonly log: Logger;
  readonly metrics: SidxMetrics;
  readonly catalog: Catalog;
  readonly control: ControlPlane;
  readonly lock: WriteLock;
  readonly dataDir: string;
  active(): ModelSpace;
  /** Collision policy for `n` encoded items in `model`'s key space (under the write lock). */
  collide(enc: EncodeResult, n: number, model: ActiveModel): Int32Array;
  /** How items that `collide` will place are encoded (collision-policy.ts encodeOptionsFor). */
  readonly placeEncode: EncodeOptions;
  /** Upserts start writing `space` too (under the write lock). */
  beginTarget(space: ModelSpace): Promise<void>;
  /** Upserts stop writing the target. */
  endTarget(): Promise<void>;
  /** Serves `space` from now on; returns the space served before. */
  swap(space: ModelSpace): Promise<ModelSpace>;
  /** Whether job `id` may swap to `model` now (a cluster shard waits for the cluster's flip: cluster/shard-models.ts). */
  maySwap(id: string, model: string): boolean;
}

// Drop and cleanup (see #scan): keys per transaction (at most the job's batchSize; each batch holds the write lock,
// so upserts wait at most one batch); the pause after one, as a multiple of its duration (at least MIN_PAUSE_MS: the
// drop thread takes at most half a core); how often they record cursor and progress (ms; two fsync'd SQLite writes).
const REMOVE_BATCH = 128;
/** How often a job held before its swap (maySwap false) asks again. */
const HOLD_POLL_MS = 100;
const PAUSE_FACTOR = 1;
const MIN_PAUSE_MS = 2;
const RECORD_EVERY_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ReindexJob {
  readonly id: string;
  #host: ReindexHost;
  #params: ReindexParams;
  #target: ModelSpace | null;
  #cancel: { resolve: () => void; promise: Promise<void> } | null = null;
  #stopping = false;
  #running: Promise<void> = Promise.resolve();
  #rate = { since: performance.now(), processed: 0, phase: '' };
  /** Items done in the current phase, ahead of what the control plane recorded (drop and cleanup record it less often). */
  #processed: number | null = null;
  /** In phase swap, waiting for maySwap (a cluster shard): it can still be cancelled. */
  #held = false;

  private constructor(host: ReindexHost, id: string, params: ReindexParams, target: ModelSpace | null) {
    this.#host = host;
    this.id = id;
    this.#params = params;
    this.#target = target;
  }

  /** Records a new job and starts it (returns once upserts write both key spaces). */
  static async start(host: ReindexHost, id: string, params: ReindexParams, target: ModelSpace): Promise<ReindexJob> {
    host.control.createJob({ id, kind: 'reindex', modelId: params.model, total: host.catalog.count });
    host.control.jobState.set(id, { phase: 'encode', cursor: 0n, params: { ...params } });
    host.control.updateJob(id, { status: 'running' });
    const job = new ReindexJob(host, id, params, target);
    await host.beginTarget(target);
    job.#launch();
    return job;
  }

  /** Carries on a job found unfinished at start; `target` is null when only its cleanup is left. */
  static async resume(host: ReindexHost, id: string, target: ModelSpace | null): Promise<ReindexJob> {
    const state = host.control.jobState.get(id)!;
    if (state.phase === null) {
      // Interrupted between its creation and its first state: nothing was written for it.
      host.control.updateJob(id, { status: 'failed', error: 'interrupted before it started' });
      host.control.jobState.set(id, { phase: 'done' });
      return new ReindexJob(host, id, state.params as unknown as ReindexParams, null);
    }
    const job = new ReindexJob(host, id, state.params as unknown as ReindexParams, target);
    const phase = state.phase as ReindexPhase;
    if (target && (phase === 'encode' || phase === 'report' || phase === 'swap') && host.catalog.spaces.activeModel !== job.#params.toVersion) {
      await host.beginTarget(target);
    }
    host.log.info(`reindex ${id}: resuming in phase ${phase} after item key ${state.cursor}`);
    job.#launch();
    return job;
  }

  get params(): ReindexParams {
    return this.#params;
  }

  /** True while the job is doing something (or has cleanup left). */
  get live(): boolean {
    return this.#state().phase !== 'done';
  }

  /**
   * Cancels before the swap: resolves once the job is recorded as cancelled and upserts stopped writing the target
   * (removing the target's key space carries on in the background). After the swap: SIDX_ERR_CONFLICT.
   */
  async cancel(): Promise<void> {
    const phase = this.#state().phase;
    const status = this.#host.control.getJob(this.id)?.status;
    if (status !== 'running' || (phase !== 'encode' && phase !== 'report' && !(phase === 'swap' && this.#held))) {
      throw new SidxError('SIDX_ERR_CONFLICT', `job ${this.id} is ${status} in phase ${phase}: only a running job before its swap can be cancelled`, { field: 'id' });
    }
    if (!this.#cancel) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#cancel = { resolve, promise };
    }
    await this.#cancel.promise;
  }

  /** Service closing: stops at the next batch boundary, leaving the job to resume at the next start. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#running;
  }

  view(): JobView {
    const row = this.#host.control.getJob(this.id)!;
    return jobView(this.#host.control, this.id, this.#rate.phase === this.#state().phase ? this.#rate : undefined, this.#processed ?? row.processed);
  }

  #state() {
    return this.#host.control.jobState.get(this.id)!;
  }

  #launch(): void {
    this.#running = this.#run().catch((err: unknown) => this.#fail(err));
  }

  async #run(): Promise<void> {
    for (;;) {
      if (this.#stopping) return;
      const { phase } = this.#state();
      if (this.#cancel && (phase === 'encode' || phase === 'report' || phase === 'swap')) {
        await this.#beginCleanup('cancelled');
        continue;
      }
      this.#rate = { since: performance.now(), processed: this.#host.control.getJob(this.id)!.processed, phase: phase ?? '' };
      if (phase === 'encode') await this.#encodePhase();
      else if (phase === 'report') await this.#reportPhase();
      else if (phase === 'swap') {
        this.#held = !this.#host.maySwap(this.id, this.#params.model) && this.#host.catalog.spaces.activeModel !== this.#params.toVersion;
        if (this.#held) await sleep(HOLD_POLL_MS);
        else await this.#swapPhase();
      }
      else if (phase === 'drop') await this.#dropPhase();
      else if (phase === 'cleanup') await this.#cleanupPhase();
      else return;
    }
  }

  #next(phase: ReindexPhase, extra: { result?: Record<string, unknown>; status?: 'succeeded' | 'cancelled' | 'failed'; error?: string } = {}): void {
    const control = this.#host.control;
    this.#processed = null;
    control.jobState.set(this.id, { phase, cursor: 0n, result: extra.result });
    // A new phase counts from 0; a finished job keeps the count of its last phase (the drop touches every item).
    control.updateJob(this.id, { processed: phase === 'done' ? undefined : 0, total: this.#host.catalog.count, status: extra.status, error: extra.error });
  }

  /**
   * Runs `batch` over the items after the phase's cursor until none are left; false if stopped or (`encoding`)
   * cancelled. The throttle (maxItemsPerSecond) applies to the encoding phase, the one that competes for CPU.
   * The other phases (drop, cleanup) never wait for a worker and run on the catalog's drop thread: after each
   * batch they pause PAUSE_FACTOR times as long as it took, and they record cursor and
   * progress (two fsync'd SQLite writes) every RECORD_EVERY_MS only (view() reports the live count). A batch
   * replayed after a crash changes nothing, so a cursor recorded a few seconds back costs a few seconds of work.
   */
  async #scan(batch: (after: bigint) => Promise<{ last: bigint; n: number; busyMs?: number } | null>, encoding: boolean): Promise<boolean> {
    const control = this.#host.control;
    let cursor = this.#state().cursor;
    let processed = control.getJob(this.id)!.processed;
    let recordedAt = performance.now();
    const record = () => {
      control.jobState.set(this.id, { cursor });
      const total = this.#host.catalog.count;
      control.updateJob(this.id, { processed, total });
      this.#host.metrics.jobProgress(this.id, 'reindex', processed, total, this.#currentRate(processed));
      recordedAt = performance.now();
    };
    for (;;) {
      if (this.#stopping || (encoding && this.#cancel)) {
        record();
        return false;
      }
      const done = await batch(cursor);
      if (!done) {
        record();
        return true;
      }
      cursor = done.last;
      processed += done.n;
      this.#processed = processed;
      const t0 = performance.now();
      if (encoding || t0 - recordedAt >= RECORD_EVERY_MS) record();
      const max = this.#params.maxItemsPerSecond;
      if (max && encoding) {
        const until = this.#rate.since + ((processed - this.#rate.processed) / max) * 1000;
        // In short steps, so a shutdown or a cancel does not wait for a long throttle pause.
        while (performance.now() < until && !this.#stopping && !this.#cancel) await sleep(Math.min(100, until - performance.now()));
      } else if (!encoding) {
        await sleep(Math.min(Math.max(MIN_PAUSE_MS, PAUSE_FACTOR * ((done.busyMs ?? 0) + performance.now() - t0)), 1000));
      }
    }
  }

  #currentRate(processed: number): number | null {
    const seconds = (performance.now() - this.#rate.since) / 1000;
    return seconds > 0 ? (processed - this.#rate.processed) / seconds : null;
  }

  async #encodePhase(): Promise<void> {
    const host = this.#host;
    const target = this.#target!;
    const finished = await this.#scan(async (after) => {
      const recs = host.catalog.itemsAfter(after, this.#params.batchSize);
      if (recs.length === 0) return null;
      const dim = target.info.inputDim;
      const flat = new Float32Array(recs.length * dim);
      recs.forEach((r, i) => flat.set(r.vector, i * dim));
      const enc = await target.pool.encode(flat, recs.length, host.placeEncode);
      await host.lock.run(() => {
        const codes = host.collide(enc, recs.length, target.info);
        const L = target.info.levels;
        host.catalog.spaces.putSids(target.info.version, recs.map((r, i) => ({ key: r.key, codes: codes.subarray(i * L, (i + 1) * L) })));
      });
      host.metrics.itemsIndexed.inc({ source: 'reindex' }, recs.length);
      return { last: recs.at(-1)!.key, n: recs.length };
    }, true);
    if (!finished || this.#cancel) return;
    // The encode phase's rate (of this process's part of it), kept for the finished job's view (job-view.ts).
    const processed = host.control.getJob(this.id)!.processed;
    const encodeItemsPerSecond = processed > this.#rate.processed ? this.#currentRate(processed) : null;
    this.#next('report', { result: { ...this.#state().result, encodeItemsPerSecond } });
  }

  async #reportPhase(): Promise<void> {
    const p = this.#params;
    const file = p.mapping ? join(this.#host.dataDir, 'reindex', `${this.id}-sid-map.csv`) : null;
    const stability = await compareSids(this.#host.catalog, p.fromVersion, p.toVersion, file, () => this.#stopping);
    if (!stability) return;
    this.#host.log.info(`reindex ${this.id}: ${stability.changed} of ${stability.compared} items changed SID (${p.fromModel} -> ${p.model})`);
    this.#next('swap', { result: { ...this.#state().result, stability, mappingFile: file } });
  }

  async #swapPhase(): Promise<void> {
    const host = this.#host;
    const target = this.#target!;
    const old = await host.swap(target);
    this.#target = null;
    host.log.info(`reindex ${this.id}: ${target.info.id} is active; dropping the key space of ${this.#params.fromModel}`);
    this.#next('drop', { result: host.control.jobState.get(this.id)!.result });
    if (old.pool !== target.pool) void closeWhenIdle(old.pool);
  }

  async #dropPhase(): Promise<void> {
    const p = this.#params;
    const finished = await this.#scan(async (after) => {
      const done = await this.#removeBatch(after, p.fromVersion, p.toVersion);
      if (done && done.orphans.length > 0) await this.#adopt(done.orphans);
      return done;
    }, false);
    if (finished) this.#next('done', { status: 'succeeded' });
  }

  /** One bounded drop or cleanup transaction, on the catalog's drop thread: `drop` goes from the next items, `keep` stays. */
  async #removeBatch(after: bigint, drop: number, keep: number) {
    const host = this.#host;
    const t0 = performance.now();
    const limit = Math.min(this.#params.batchSize, REMOVE_BATCH);
    const res = await host.lock.run(() => host.catalog.spaces.dropAfterOffThread(after, limit, drop, keep));
    return res && { last: res.last, n: res.n, busyMs: performance.now() - t0, orphans: res.orphans };
  }

  /** Items the target never got a SID for (should not happen): encode them with the now active model, then drop. */
  async #adopt(keys: bigint[]): Promise<void> {
    const host = this.#host;
    const space = host.active();
    const recs = keys.map((k) => host.catalog.getByKey(k)).filter((r) => r !== undefined);
    const dim = space.info.inputDim;
    const flat = new Float32Array(recs.length * dim);
    recs.forEach((r, i) => flat.set(r.vector, i * dim));
    const enc = await space.pool.encode(flat, recs.length, host.placeEncode);
    host.log.warn(`reindex ${this.id}: ${recs.length} item(s) had no SID in ${space.info.id}; encoded them during the drop`);
    await host.lock.run(() => {
      const codes = host.collide(enc, recs.length, space.info);
      const L = space.info.levels;
      host.catalog.spaces.putSids(space.info.version, recs.map((r, i) => ({ key: r.key, codes: codes.subarray(i * L, (i + 1) * L) })));
      host.catalog.spaces.dropSpace(this.#params.fromVersion, this.#params.toVersion, BigInt64Array.from(recs, (r) => r.key));
    });
  }

  async #beginCleanup(status: 'cancelled' | 'failed', error?: string): Promise<void> {
    await this.#host.endTarget();
    this.#next('cleanup', { status, error });
    this.#cancel?.resolve();
    this.#host.log.info(`reindex ${this.id}: ${status}; removing the key space of ${this.#params.model}`);
    if (this.#target) void closeWhenIdle(this.#target.pool);
    this.#target = null;
  }

  async #cleanupPhase(): Promise<void> {
    const p = this.#params;
    const keep = this.#host.active().info.version;
    const finished = await this.#scan((after) => this.#removeBatch(after, p.toVersion, keep), false);
    if (finished) this.#host.control.jobState.set(this.id, { phase: 'done' });
  }

  async #fail(err: unknown): Promise<void> {
    const host = this.#host;
    if (this.#stopping) {
      host.log.warn(`reindex ${this.id}: stopped (${(err as Error).message}); it resumes at the next start`);
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    host.log.warn(`reindex ${this.id} failed: ${message}`);
    const phase = this.#state().phase;
    try {
      if (phase === 'encode' || phase === 'report' || phase === 'swap') {
        if (phase !== 'swap' || host.catalog.spaces.activeModel !== this.#params.toVersion) {
          await this.#beginCleanup('failed', message);
          this.#running = this.#run().catch((e: unknown) => host.log.warn(`reindex ${this.id}: cleanup failed: ${(e as Error).message}`));
          return;
        }
      }
      host.control.updateJob(this.id, { status: 'failed', error: `${message} (phase ${phase})` });
      host.control.jobState.set(this.id, { phase: 'done' });
    } catch (e) {
      host.log.warn(`reindex ${this.id}: could not record the failure: ${(e as Error).message}`);
    }
  }
}
