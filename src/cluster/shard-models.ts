/**
 * A shard replica's side of the cluster's registry (registry.ts; the protocol is in router-models.ts): follows the
 * active model and the running re-index in the KV bucket and drives its own SidxService.
 *
 * - Running job j to model B: registers B locally (its bundle found under this node's model.registryDir and checked
 *   against the registered sha256 before it is accepted), starts its single-node re-index under the id j with the
 *   job's parameters, and reports its progress (`progress.j.<shard>.<replica>`). The local job holds at its swap
 *   until `active` = B (the service's swap gate), so it swaps only after every shard was ready. A restart resumes the
 *   local job from its control plane (the gate holds it from the start: a shard's default gate is closed).
 * - Job cancelled or failed: the local job is cancelled (its key space removed) and reported done.
 * - `active` names a model this replica does not serve and no job moves it there (it was down during a whole
 *   re-index, or joined later): with an empty catalog it activates the model at once; else it re-indexes on its own
 *   (a catch-up job that swaps as soon as it is built). Until then it refuses queries in the new model.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config.ts';
import { isSidxError, SidxError } from '../errors.ts';
import type { JobView } from '../service/job-view.ts';
import type { SidxService } from '../service/sidx-service.ts';
import { loadEntryBundle, type ActiveEntry, type ClusterJob, type ClusterRegistry, type ReplicaProgress } from './registry.ts';

interface Log { info(msg: string): void; warn(msg: string): void }

/** How often the replica looks at the bucket and reports its job besides on bucket changes. */
const REPORT_EVERY_MS = 500;
/** A reconcile still running after this long is logged with the step it waits on (once per step). */
const SLOW_STEP_MS = 10_000;
const READY_PHASES = new Set(['swap', 'drop', 'done']);

export class ShardModels {
  #reg: ClusterRegistry;
  #service: SidxService;
  #config: Readonly<Config>;
  #log: Log;
  #replica: string;
  #active: ActiveEntry | null = null;
  #stopWatch: () => void = () => undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | null = null;
  #again = false;
  #reported = new Map<string, { state: string; processed: number; at: number }>();
  #catchUp: string | null = null;
  #closed = false;
  /** What the running reconcile waits on, since when, and the step last logged as slow. */
  #step = { what: '', since: 0, logged: '' };

  private constructor(reg: ClusterRegistry, service: SidxService, config: Readonly<Config>, log: Log) {
    this.#reg = reg;
    this.#service = service;
    this.#config = config;
    this.#log = log;
    this.#replica = config.cluster.replica || hostname();
  }

  static async start(reg: ClusterRegistry, service: SidxService, config: Readonly<Config>, log: Log): Promise<ShardModels> {
    const m = new ShardModels(reg, service, config, log);
    m.#active = await reg.active();
    service.setSwapGate((_id, model) => m.#active?.model === model);
    // Its own and the other replicas' progress reports change nothing here.
    m.#stopWatch = await reg.watch((key) => key.startsWith('progress.') || m.#kick());
    m.#timer = setInterval(() => {
      m.#logSlowStep();
      m.#kick();
    }, REPORT_EVERY_MS).unref();
    m.#kick();
    return m;
  }

  /** Runs #reconcile, once at a time; a change meanwhile runs it again after. */
  #kick(): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = (async () => {
      do {
        this.#again = false;
        await this.#reconcile().catch((err: unknown) => this.#log.warn(`cluster: registry: ${(err as Error).message}`));
      } while (this.#again && !this.#closed);
    })().finally(() => (this.#busy = null));
  }

  async #reconcile(): Promise<void> {
    this.#at('reading the registry');
    this.#active = await this.#reg.active();
    const running = await this.#reg.running();
    const job = running ? (await this.#reg.job(running))?.value ?? null : null;
    if (job) await this.#follow(job);
    await this.#catchUpTo(job);
    this.#at('');
  }

  /** Names the step the reconcile is about to wait on. */
  #at(what: string): void {
    this.#step.what = what;
    this.#step.since = Date.now();
  }

  /** A step that has waited SLOW_STEP_MS is logged once (what a stuck replica was doing shows in its log). */
  #logSlowStep(): void {
    const { what, since, logged } = this.#step;
    if (!this.#busy || what === '' || what === logged || Date.now() - since < SLOW_STEP_MS) return;
    this.#step.logged = what;
    this.#log.warn(`cluster: registry: still ${what} after ${Math.round((Date.now() - since) / 1000)} s`);
  }

  #localJob(id: string): JobView | null {
    try {
      return this.#service.getJob(id);
    } catch (err) {
      if (isSidxError(err) && err.code === 'SIDX_ERR_JOB_NOT_FOUND') return null;
      throw err;
    }
  }

  async #follow(job: ClusterJob): Promise<void> {
    let view = this.#localJob(job.id);
    if (job.status === 'running' && !view && this.#service.model.id !== job.model) {
      try {
        await this.#ensureLocal(job.model);
        this.#at(`starting re-index ${job.id} to ${job.model}`);
        view = await this.#service.startReindex({
          id: job.id, model: job.model, batchSize: job.batchSize ?? undefined, maxItemsPerSecond: job.maxItemsPerSecond ?? undefined, mapping: job.mapping,
        });
        this.#log.info(`cluster: re-index ${job.id} to ${job.model} started on this replica`);
      } catch (err) {
        await this.#report(job, { status: 'failed', phase: 'done', error: (err as Error).message });
        return;
      }
    }
    if ((job.status === 'cancelled' || job.status === 'failed') && view?.status === 'running' && (view.phase === 'encode' || view.phase === 'report' || view.phase === 'swap')) {
      this.#at(`cancelling ${job.id}`);
      await this.#service.cancelJob(job.id).catch((err: unknown) => this.#log.warn(`cluster: cancel of ${job.id}: ${(err as Error).message}`));
      view = this.#localJob(job.id);
    }
    if (view) await this.#report(job, view);
    else if (this.#service.model.id === job.model) await this.#report(job, { status: 'succeeded', phase: 'done' });
  }

  async #report(job: ClusterJob, v: Partial<JobView>): Promise<void> {
    const phase = v.phase ?? null;
    const status = (v.status ?? 'running') as JobView['status'];
    const p: Omit<ReplicaProgress, 'updatedAt'> = {
      job: job.id, shard: this.#config.cluster.shard, replica: this.#replica, status, phase, processed: v.processed ?? 0, total: v.total ?? null,
      itemsPerSecond: v.itemsPerSecond ?? null, etaSeconds: v.etaSeconds ?? null, stability: v.stability ?? null, error: v.error ?? null,
      ready: (status === 'running' || status === 'succeeded') && READY_PHASES.has(phase ?? ''), swapped: this.#service.model.id === job.model,
    };
    // A change of state at once; counts alone at most every REPORT_EVERY_MS (the bucket keeps 64 revisions a key).
    const state = JSON.stringify([p.status, p.phase, p.ready, p.swapped, p.error]);
    const last = this.#reported.get(job.id);
    if (last && last.state === state && (last.processed === p.processed || Date.now() - last.at < REPORT_EVERY_MS)) return;
    this.#at(`reporting progress of ${job.id}`);
    await this.#reg.putProgress({ ...p, updatedAt: new Date().toISOString() });
    this.#reported.set(job.id, { state, processed: p.processed, at: Date.now() });
  }

  /** Serves the active model when this replica does not and no cluster job brings it there. */
  async #catchUpTo(job: ClusterJob | null): Promise<void> {
    const active = this.#active;
    const svc = this.#service;
    if (!active || active.model === svc.model.id) return;
    if (job && job.model === active.model && this.#localJob(job.id)?.status === 'running') return;
    if (this.#catchUp && this.#localJob(this.#catchUp)?.status === 'running') return;
    await this.#ensureLocal(active.model);
    this.#at(`catching up to ${active.model}`);
    if (svc.readiness().items === 0) {
      await svc.activateModel(active.model);
      this.#log.info(`cluster: serving ${active.model}, the cluster's active model (empty catalog)`);
      return;
    }
    const id = `catchup-${randomUUID()}`;
    await svc.startReindex({ id, model: active.model });
    this.#catchUp = id;
    this.#log.warn(`cluster: this replica serves ${svc.model.id}, the cluster ${active.model}: re-indexing on its own (job ${id})`);
  }

  /** Registers model `id` in this replica's control plane, its bundle checked against the cluster's sha256 first. */
  async #ensureLocal(id: string): Promise<void> {
    this.#at(`registering model ${id}`);
    const entry = await this.#reg.model(id);
    if (!entry) throw new SidxError('SIDX_ERR_UNKNOWN_MODEL', `model ${id} is not in the cluster registry`);
    const local = this.#service.listModels().find((m) => m.id === id);
    if (local) {
      if (local.sha256 !== entry.sha256) {
        throw new SidxError('SIDX_ERR_MODEL_BUNDLE', `model ${id} is registered here with sha256 ${local.sha256}, in the cluster with ${entry.sha256}`);
      }
      return;
    }
    await loadEntryBundle(entry, this.#config.model.registryDir); // refuses a bundle with another digest
    const row = await this.#service.registerModel(entry.path);
    if (row.sha256 !== entry.sha256) throw new SidxError('SIDX_ERR_MODEL_BUNDLE', `model ${id}: the bundle changed while it was registered here`);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#stopWatch();
    await this.#busy;
  }
}
