/**
 * Model registry and re-index use-cases: list, register (validated) and activate models; start, watch and
 * cancel re-index jobs; carry unfinished jobs on at start. One re-index at a time.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import type { ModelRow } from '../store/control-plane.ts';
import { checkBundle, closeWhenIdle, loadRegistered, openSpace, pathUnder, registerBundle, unknownModel, type ModelSpace } from './model-space.ts';
import { jobView, ReindexJob, type JobView, type ReindexHost } from './reindex-job.ts';

export interface ModelView extends ModelRow {
  active: boolean;
}

export interface ReindexRequest {
  model: string;
  batchSize?: number;
  maxItemsPerSecond?: number;
  mapping?: boolean;
  /** The job's id (a cluster shard uses the cluster job's); default a new UUID. */
  id?: string;
}

/** What activation needs beyond the job host: switching the served model when the catalog is empty. */
export interface LifecycleHost extends ReindexHost {
  readonly config: Readonly<Config>;
}

export class Lifecycle {
  #host: LifecycleHost;
  #job: ReindexJob | null = null;

  constructor(host: LifecycleHost) {
    this.#host = host;
  }

  listModels(status?: string): ModelView[] {
    const active = this.#host.active().info.id;
    return this.#host.control.listModels()
      .filter((m) => status === undefined || m.status === status)
      .map((m) => ({ ...m, active: m.id === active }));
  }

  #registeredIds(): string[] {
    return this.#host.control.listModels().map((m) => m.id);
  }

  /**
   * Registers the bundle at `path` (under model.registryDir): model.json valid, encoder.onnx loads in ONNX
   * Runtime and encodes a probe row into codes within the codebooks, input dimension and metric equal to the
   * served model's (the catalog's vectors and the vector slot file are shared by every model).
   */
  async registerModel(path: string): Promise<ModelView> {
    const host = this.#host;
    const dir = await pathUnder(host.config.model.registryDir, path);
    const bundle = await checkBundle(dir, host.active().info, host.config, host.log, host.metrics);
    const row = registerBundle(host.control, bundle);
    host.log.info(`model ${row.id} registered (version ${row.version}) from ${dir}`);
    return { ...row, active: false };
  }

  /** Activates a registered model at once when that hides nothing (the catalog is empty); else 409: re-index. */
  async activateModel(id: string): Promise<ModelView> {
    const host = this.#host;
    const row = host.control.getModel(id);
    if (!row) throw unknownModel(id, this.#registeredIds(), 'id');
    if (host.active().info.id === id) return { ...row, active: true };
    if (this.#job?.live) throw new SidxError('SIDX_ERR_CONFLICT', `re-index ${this.#job.id} is under way`, { field: 'id' });
    const items = host.catalog.count;
    if (items > 0) {
      throw new SidxError('SIDX_ERR_CONFLICT', `the catalog holds ${items} items with SIDs from ${host.active().info.id}: `
        + `POST /v1/reindex {"model": ${JSON.stringify(id)}} re-encodes them and activates the model when done`, { field: 'id' });
    }
    const space = await openSpace(await loadRegistered(row), row.version, host.config, host.log, host.metrics);
    const old = await host.swap(space);
    void closeWhenIdle(old.pool);
    host.log.info(`model ${id} activated (empty catalog)`);
    return { ...host.control.getModel(id)!, active: true };
  }

  async startReindex(req: ReindexRequest): Promise<JobView> {
    const host = this.#host;
    if (this.#job?.live) throw new SidxError('SIDX_ERR_CONFLICT', `re-index ${this.#job.id} is under way`, { field: 'model' });
    const row = host.control.getModel(req.model);
    if (!row) throw unknownModel(req.model, this.#registeredIds(), 'model');
    const from = host.active().info;
    if (row.id === from.id) throw new SidxError('SIDX_ERR_CONFLICT', `model ${row.id} is already active`, { field: 'model' });
    const bundle = await loadRegistered(row);
    if (bundle.manifest.inputDim !== from.inputDim || bundle.manifest.metric !== from.metric) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${row.id} does not fit the catalog (input dimension or metric)`, { field: 'model' });
    }
    const target = await openSpace(bundle, row.version, host.config, host.log, host.metrics);
    try {
      this.#job = await ReindexJob.start(host, req.id ?? randomUUID(), {
        model: row.id, batchSize: req.batchSize ?? host.config.reindex.batchSize, maxItemsPerSecond: req.maxItemsPerSecond ?? null,
        mapping: req.mapping ?? false, fromModel: from.id, fromVersion: from.version, toVersion: row.version,
      }, target);
    } catch (err) {
      await target.pool.close();
      throw err;
    }
    host.log.info(`reindex ${this.#job.id}: ${from.id} -> ${row.id} started (${host.catalog.count} items)`);
    return this.#job.view();
  }

  job(id: string): JobView {
    if (this.#job?.id === id) return this.#job.view();
    return jobView(this.#host.control, id);
  }

  async cancelJob(id: string): Promise<JobView> {
    if (this.#job?.id !== id) {
      const view = jobView(this.#host.control, id);
      throw new SidxError('SIDX_ERR_CONFLICT', `job ${id} is ${view.status}: only a running job before its swap can be cancelled`, { field: 'id' });
    }
    await this.#job.cancel();
    return this.#job.view();
  }

  /** At start (after the served model is open): carries on unfinished re-index jobs. */
  async resume(): Promise<void> {
    const host = this.#host;
    for (const id of host.control.jobState.unfinished('reindex')) {
      const state = host.control.jobState.get(id)!;
      if (state.phase === null) {
        await ReindexJob.resume(host, id, null); // records it as failed: it never started
        continue;
      }
      const params = state.params as { toVersion?: number; model?: string };
      let target: ModelSpace | null = null;
      if (state.phase === 'encode' || state.phase === 'report' || state.phase === 'swap') {
        const active = host.active();
        if (active.info.version === params.toVersion) target = active; // the swap committed before the crash
        else {
          const row = host.control.getModel(params.model ?? '');
          if (!row) throw new SidxError('SIDX_ERR_STORE', `re-index ${id}: its model ${params.model} is not registered`);
          target = await openSpace(await loadRegistered(row), row.version, host.config, host.log, host.metrics);
        }
      }
      this.#job = await ReindexJob.resume(host, id, target);
    }
  }

  /** Service closing: the running job stops at a batch boundary (it resumes at the next start). */
  async stop(): Promise<void> {
    await this.#job?.stop();
  }

  /** True when a re-index (or its cleanup) is unfinished in the control plane. */
  static pending(host: Pick<ReindexHost, 'control'>): boolean {
    return host.control.jobState.unfinished('reindex').length > 0;
  }
}
