/**
 * The model registry, activation and re-index jobs on a cluster router, kept in the registry bucket (registry.ts),
 * and the coordinator that moves a cluster re-index on (every router runs it; each step is a compare-and-set).
 *
 * A cluster re-index, job `j` from model A to B:
 *   1. POST /v1/reindex: `job.j` {status running} and `running` = j are created (one unfinished job at a time).
 *   2. Each shard replica sees it (shard-models.ts), runs its single-node re-index build (encode, report) to B
 *      under the id j and holds at its swap; it reports `progress.j.<shard>.<replica>` (ready once held).
 *   3. When every shard has a replica in the job and every replica in the job is ready, the coordinator moves the
 *      job to swapping (once), switches its own encoder to B, then puts `active` = B. Each replica's swap gate
 *      opens on that `active`: it swaps (one LMDB commit) and drops A's key space; other routers switch encoders.
 *   4. When every replica reports swapped and done, the job succeeded and `running` is freed.
 *   A cancel (only while running, before the flip) moves the job to cancelled: replicas cancel their local jobs and
 *   remove B's key space; `running` is freed once each reports done. A replica whose local job fails makes the job
 *   failed (the same cleanup). A replica in the job that dies holds the flip back until it restarts (its local job
 *   resumes) or the job is cancelled.
 *
 * Queries during the flip: a router encodes a query with the model it serves and a shard answers only from that
 * model's key space; a shard serving another model refuses with SIDX_ERR_MODEL_SWAP, and the router encodes the
 * query again with its current model and asks again until cluster.requestTimeoutMs, after which the shards still
 * refusing are missing (`partial`). An answer never mixes two models.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import type { JobView, ReplicaJobView, Stability } from '../service/job-view.ts';
import type { ModelView, ReindexRequest } from '../service/lifecycle.ts';
import type { SidxMetrics } from '../service/metrics.ts';
import { checkBundle, pathUnder, unknownModel, type ActiveModel } from '../service/model-space.ts';
import type { Logger } from '../service/vector-state.ts';
import { ClusterRegistry, type ClusterJob, type RegisteredModel, type ReplicaProgress } from './registry.ts';

/** What the registry needs of the router. */
export interface RouterHost {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly metrics: SidxMetrics;
  /** The model the router encodes with. */
  served(): ActiveModel;
  /** Switches the router's encoder to `m` (loaded and checked against its sha256 first). */
  serve(m: RegisteredModel): Promise<void>;
  /** Items on the shards (one replica each), or null when a shard does not answer. */
  items(): Promise<number | null>;
}

/** How often the coordinator looks at the running job besides on bucket changes. */
const COORDINATE_EVERY_MS = 500;
const PHASES = ['encode', 'report', 'swap', 'drop', 'cleanup', 'done'];

/**
 * A finished cluster job's items/s: its items over the encode phase's duration. The replicas encode at once, so the
 * phase lasts as long as the slowest replica's encode (its items / its encode rate). Summing the shards' rates
 * would count a shard that finished early as still encoding (it equals this when the shards take as long). Null
 * unless every replica is done and reported its encode rate (none after a cancel during the encode).
 */
export function finishedEncodeRate(replicas: readonly ReplicaProgress[], items: number): number | null {
  let seconds = 0;
  for (const p of replicas) {
    if (p.phase !== 'done') return null;
    if (p.processed === 0) continue;
    if (p.itemsPerSecond === null || !(p.itemsPerSecond > 0)) return null;
    seconds = Math.max(seconds, p.processed / p.itemsPerSecond);
  }
  return seconds > 0 ? items / seconds : null;
}

function modelView(m: RegisteredModel, active: string | null): ModelView {
  const { metric: _metric, activatedAt, ...row } = m;
  const status = m.id === active ? 'active' : activatedAt ? 'retired' : 'registered';
  return { ...row, version: m.version, status, active: m.id === active };
}

export class RouterModels {
  readonly registry: ClusterRegistry;
  #host: RouterHost;
  #stopWatch: () => void = () => undefined;
  #timer: NodeJS.Timeout | undefined;
  #coordinating: Promise<void> | null = null;
  #serving: Promise<void> = Promise.resolve();

  private constructor(registry: ClusterRegistry, host: RouterHost) {
    this.registry = registry;
    this.#host = host;
  }

  /**
   * Registers the router's own model as the first active one when the cluster has none, else serves the active
   * one; then follows the bucket (encoder switches, the coordinator).
   */
  static async start(registry: ClusterRegistry, host: RouterHost, own: Omit<RegisteredModel, 'version' | 'createdAt'>): Promise<RouterModels> {
    const models = new RouterModels(registry, host);
    if (!(await registry.active())) {
      const { model } = await registry.register(own);
      await registry.setActive(model, null, true);
    }
    await models.#follow();
    models.#stopWatch = await registry.watch((key) => {
      if (key === 'active') void models.#follow();
      else models.#kick();
    });
    models.#timer = setInterval(() => models.#kick(), COORDINATE_EVERY_MS).unref();
    return models;
  }

  /** Serves the active model when the router's encoder has another (one switch at a time). */
  #follow(): Promise<void> {
    this.#serving = this.#serving.then(async () => {
      const active = await this.registry.active();
      if (!active || active.model === this.#host.served().id) return;
      const m = await this.registry.model(active.model);
      if (m) await this.#host.serve(m);
    }).catch((err: unknown) => this.#host.log.warn(`cluster: cannot serve the active model: ${(err as Error).message}`));
    return this.#serving;
  }

  #kick(): void {
    if (this.#coordinating) return;
    this.#coordinating = this.#coordinate()
      .catch((err: unknown) => this.#host.log.warn(`cluster: re-index coordinator: ${(err as Error).message}`))
      .finally(() => (this.#coordinating = null));
  }

  async #coordinate(): Promise<void> {
    const reg = this.registry;
    const id = await reg.running();
    if (!id) return;
    const job = (await reg.job(id))?.value;
    if (!job) return reg.release(id);
    const progress = await reg.progress(id);
    const shards = this.#host.config.cluster.shards;
    if (job.status === 'running') {
      const failed = progress.find((p) => p.status === 'failed');
      if (failed) {
        await reg.transition(id, ['running'], 'failed', `shard ${failed.shard} replica ${failed.replica}: ${failed.error}`);
        return;
      }
      const covered = Array.from({ length: shards }, (_, s) => progress.some((p) => p.shard === s)).every(Boolean);
      if (covered && progress.every((p) => p.ready)) {
        const next = await reg.transition(id, ['running'], 'swapping');
        if (next?.status === 'swapping') await this.#flip(job);
      }
    } else if (job.status === 'swapping') {
      await this.#flip(job); // again, in case the router that moved the job on died before it flipped
      if (progress.every((p) => p.swapped && p.phase === 'done')) {
        await reg.transition(id, ['swapping'], 'succeeded');
        await reg.release(id);
        this.#host.log.info(`cluster: re-index ${id} succeeded: ${job.model} is active on every shard`);
      }
    } else if (progress.every((p) => p.phase === 'done' || p.phase === null)) {
      await reg.release(id);
    }
  }

  /** The router's encoder first (it asks shards in B as soon as they swap), then `active` = B for everyone. */
  async #flip(job: ClusterJob): Promise<void> {
    const active = await this.registry.active();
    if (active?.model === job.model) return;
    const m = await this.registry.model(job.model);
    if (!m) throw new Error(`model ${job.model} is not registered`);
    await this.#host.serve(m);
    await this.registry.setActive(m, job.id);
    this.#host.log.info(`cluster: re-index ${job.id}: every shard is ready; ${job.model} is active`);
  }

  async listModels(status?: string): Promise<ModelView[]> {
    const active = (await this.registry.active())?.model ?? null;
    return (await this.registry.models()).map((m) => modelView(m, active)).filter((m) => status === undefined || m.status === status);
  }

  /** Validated as on a single node (model-space.ts checkBundle), on the router; each shard checks the digest when it loads it. */
  async registerModel(path: string): Promise<ModelView> {
    const host = this.#host;
    const dir = await pathUnder(host.config.model.registryDir, path);
    const bundle = await checkBundle(dir, host.served(), host.config, host.log, host.metrics);
    const m = bundle.manifest;
    const { model, created } = await this.registry.register({
      id: m.id, method: m.method, inputDim: m.inputDim, levels: m.levels, codebookSizes: m.codebookSizes, metric: m.metric, path,
      sha256: bundle.sha256, metrics: m.metrics ?? {},
    });
    if (created) host.log.info(`cluster: model ${m.id} registered (version ${model.version}) from ${path}`);
    return modelView(model, (await this.registry.active())?.model ?? null);
  }

  async #registered(id: string, field: string): Promise<RegisteredModel> {
    const m = await this.registry.model(id);
    if (!m) throw unknownModel(id, (await this.registry.models()).map((r) => r.id), field);
    return m;
  }

  /** Activates at once only while the shards hold no item (as on a single node); else 409: re-index. */
  async activateModel(id: string): Promise<ModelView> {
    const m = await this.#registered(id, 'id');
    if ((await this.registry.active())?.model === id) return modelView(m, id);
    const running = await this.registry.running();
    if (running) throw new SidxError('SIDX_ERR_CONFLICT', `re-index ${running} is under way`, { field: 'id' });
    const items = await this.#host.items();
    if (items === null) throw new SidxError('SIDX_ERR_CLUSTER', 'a shard did not answer: cannot tell whether the cluster is empty');
    if (items > 0) {
      throw new SidxError('SIDX_ERR_CONFLICT', `the shards hold ${items} items with SIDs from ${this.#host.served().id}: `
        + `POST /v1/reindex {"model": ${JSON.stringify(id)}} re-encodes them and activates the model when done`, { field: 'id' });
    }
    await this.#host.serve(m);
    await this.registry.setActive(m, null);
    return modelView((await this.registry.model(id))!, id);
  }

  async startReindex(req: ReindexRequest): Promise<JobView> {
    const m = await this.#registered(req.model, 'model');
    const from = this.#host.served();
    if ((await this.registry.active())?.model === m.id) throw new SidxError('SIDX_ERR_CONFLICT', `model ${m.id} is already active`, { field: 'model' });
    if (m.inputDim !== from.inputDim || m.metric !== from.metric) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${m.id} does not fit the catalog (input dimension or metric)`, { field: 'model' });
    }
    const now = new Date().toISOString();
    const job: ClusterJob = {
      id: randomUUID(), model: m.id, fromModel: from.id, batchSize: req.batchSize ?? null, maxItemsPerSecond: req.maxItemsPerSecond ?? null,
      mapping: req.mapping ?? false, status: 'running', error: null, createdAt: now, updatedAt: now,
    };
    await this.registry.createJob(job);
    this.#host.log.info(`cluster: re-index ${job.id}: ${from.id} -> ${m.id} started on ${this.#host.config.cluster.shards} shard(s)`);
    return this.getJob(job.id);
  }

  async cancelJob(id: string): Promise<JobView> {
    const before = (await this.registry.job(id))?.value;
    if (!before) throw new SidxError('SIDX_ERR_JOB_NOT_FOUND', `no job ${JSON.stringify(id)}`, { field: 'id' });
    const job = before.status === 'running' ? (await this.registry.transition(id, ['running'], 'cancelled'))! : before;
    if (job.status !== 'cancelled' || before.status !== 'running') {
      throw new SidxError('SIDX_ERR_CONFLICT', `job ${id} is ${job.status}: only a running job before its swap can be cancelled`, { field: 'id' });
    }
    return this.getJob(id);
  }

  /** The cluster job in the single-node shape: per shard its least advanced replica, summed; plus every replica. */
  async getJob(id: string): Promise<JobView> {
    const job = (await this.registry.job(id))?.value;
    if (!job) throw new SidxError('SIDX_ERR_JOB_NOT_FOUND', `no job ${JSON.stringify(id)}`, { field: 'id' });
    const progress = await this.registry.progress(id);
    const rank = (p: ReplicaProgress) => PHASES.indexOf(p.phase ?? 'encode') * 1e12 + p.processed;
    const slowest = Array.from({ length: this.#host.config.cluster.shards }, (_, s) => progress.filter((p) => p.shard === s)
      .sort((a, b) => rank(a) - rank(b))[0]);
    const parts = slowest.filter((p) => p !== undefined);
    const complete = parts.length === slowest.length;
    const sum = (f: (p: ReplicaProgress) => number | null) => (complete && parts.every((p) => f(p) !== null) ? parts.reduce((s, p) => s + f(p)!, 0) : null);
    const allDone = progress.length > 0 && progress.every((p) => p.phase === 'done');
    let phase: string | null;
    if (job.status === 'succeeded') phase = 'done';
    else if (job.status === 'cancelled' || job.status === 'failed') phase = allDone ? 'done' : 'cleanup';
    else phase = parts.length > 0 ? parts.reduce((a, p) => (PHASES.indexOf(p.phase ?? 'encode') < PHASES.indexOf(a) ? p.phase ?? 'encode' : a), 'done') : 'encode';
    const stability = complete && parts.every((p) => p.stability)
      ? parts.reduce<Stability>((s, p) => ({ compared: s.compared + p.stability!.compared, changed: s.changed + p.stability!.changed,
        unchanged: s.unchanged + p.stability!.unchanged, missing: s.missing + p.stability!.missing }), { compared: 0, changed: 0, unchanged: 0, missing: 0 })
      : null;
    const rates = parts.map((p) => p.itemsPerSecond).filter((r) => r !== null);
    const processed = parts.reduce((s, p) => s + p.processed, 0);
    const running = job.status === 'running' || job.status === 'swapping';
    const etas = parts.map((p) => p.etaSeconds).filter((e) => e !== null);
    const shards: ReplicaJobView[] = progress.map((p) => ({
      shard: p.shard, replica: p.replica, status: p.status, phase: p.phase, processed: p.processed, total: p.total, ready: p.ready,
      swapped: p.swapped, error: p.error, updatedAt: p.updatedAt,
    }));
    return {
      id, kind: 'reindex', status: job.status === 'swapping' ? 'running' : job.status, phase, model: job.model, fromModel: job.fromModel,
      processed, total: sum((p) => p.total),
      itemsPerSecond: job.status === 'running' && rates.length > 0 ? rates.reduce((a, b) => a + b, 0)
        : !running && complete ? finishedEncodeRate(progress, processed) : null,
      etaSeconds: job.status === 'running' && etas.length > 0 ? Math.max(...etas) : null,
      error: job.error, stability, mappingFile: null, createdAt: job.createdAt, updatedAt: job.updatedAt, shards,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#stopWatch();
    await this.#coordinating;
    await this.#serving;
  }
}
