/**
 * The cluster's model registry and re-index coordination: one JetStream KV bucket (cluster.registry, file storage,
 * cluster.streamReplicas replicas, 64 revisions of history per key), read and written by routers and shards.
 *
 *   model.<id>                      RegisteredModel: a bundle every node can load (path relative to its own
 *                                   model.registryDir, or absolute for a node's model.dir) and its sha256
 *   version                         the last registry version handed out (compare-and-set counter)
 *   active                          ActiveEntry: the model every node serves; routers encode with it
 *   running                         the id of the one unfinished cluster re-index (created atomically: one at a time)
 *   job.<id>                        ClusterJob: the cluster re-index and its cluster-wide status
 *   progress.<job>.<shard>.<rep>    ReplicaProgress: one shard replica's local job (phase, counts, ready, swapped)
 *
 * Every transition that must happen once (a version, the running job, a job's status) is a compare-and-set on the
 * key's revision, so several routers may coordinate at once.
 */
import { isAbsolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CHANGED_BUNDLE_HINT, SidxError } from '../errors.ts';
import type { ModelView } from '../service/lifecycle.ts';
import type { JobView } from '../service/job-view.ts';
import { pathUnder } from '../service/model-space.ts';
import { loadBundle, type ModelBundle } from '../tokenizer/bundle.ts';
import { decodeJson, encodeJson } from './wire.ts';

export interface RegisteredModel {
  id: string;
  /** Registry order (1, 2, ...); a shard's own key-space version may differ. */
  version: number;
  method: ModelView['method'];
  inputDim: number;
  levels: number;
  codebookSizes: number[];
  metric: string;
  path: string;
  sha256: string;
  metrics: Record<string, unknown>;
  createdAt: string;
  /** Set when the model first became active (a model active once and no longer is 'retired'). */
  activatedAt?: string;
}

export interface ActiveEntry {
  model: string;
  sha256: string;
  /** The re-index that flipped to it, or null (the first model, or an activation of an empty cluster). */
  job: string | null;
  since: string;
}

export type ClusterJobStatus = 'running' | 'swapping' | 'succeeded' | 'cancelled' | 'failed';

export interface ClusterJob {
  id: string;
  model: string;
  fromModel: string;
  batchSize: number | null;
  maxItemsPerSecond: number | null;
  mapping: boolean;
  /** running: shards build; swapping: `active` flipped, shards swap and drop; then succeeded, or cancelled / failed. */
  status: ClusterJobStatus;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ReplicaProgress {
  job: string;
  shard: number;
  replica: string;
  /** The replica's local job (JobView fields), or its failure to start one. */
  status: JobView['status'];
  phase: string | null;
  processed: number;
  total: number | null;
  itemsPerSecond: number | null;
  etaSeconds: number | null;
  stability: JobView['stability'];
  error: string | null;
  /** Built: its local job waits at (or is past) its swap. */
  ready: boolean;
  /** Serves the job's model. */
  swapped: boolean;
  updatedAt: string;
}

/** KV keys allow [-/_=.A-Za-z0-9]; a replica name is reduced to that. */
export const keyToken = (s: string) => s.replace(/[^A-Za-z0-9_=-]/g, '_');

/**
 * The bundle of a registered model on this node: its path under this node's model.registryDir (absolute: a node's
 * model.dir), checked to have the registered sha256 (the bundles must be the same on every node).
 */
export async function loadEntryBundle(m: Pick<RegisteredModel, 'id' | 'path' | 'sha256'>, registryDir: string): Promise<ModelBundle> {
  const dir = isAbsolute(m.path) ? m.path : await pathUnder(registryDir, m.path);
  const bundle = await loadBundle(dir);
  if (bundle.sha256 !== m.sha256) {
    throw new SidxError('SIDX_ERR_MODEL_BUNDLE', `${dir}: model ${m.id} is registered in the cluster with sha256 ${m.sha256}, this node's bundle has ${bundle.sha256}`, { field: 'path' });
  }
  return bundle;
}

export class ClusterRegistry {
  readonly kv: KV;
  readonly bucket: string;

  private constructor(kv: KV, bucket: string) {
    this.kv = kv;
    this.bucket = bucket;
  }

  /** Opens the bucket, creating it when missing. */
  static async open(nc: NatsConnection, bucket: string, replicas: number): Promise<ClusterRegistry> {
    try {
      return new ClusterRegistry(await new Kvm(nc).create(bucket, { history: 64, storage: StorageType.File, replicas }), bucket);
    } catch (err) {
      throw new SidxError('SIDX_ERR_CLUSTER', `registry bucket ${bucket}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * The cluster's shard count, recorded by the first router or shard to start: an item's shard is its id's hash modulo
   * that count, so a node started with another one (a router without --shard: 1) would log writes to the wrong shards,
   * or follow a shard no router writes, and nothing would notice. Such a node is refused.
   */
  async agreeShards(shards: number, node: string, inLog: () => Promise<number>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const recorded = await this.#get<number>('shards');
      if (recorded === null) {
        // A log written before the count was recorded: a count below what it shows is not recorded.
        const logged = await inLog();
        if (logged > shards) {
          throw new SidxError('SIDX_ERR_CONFIG', `${node} was started with ${shards} shard(s), but the write log holds writes for `
            + `${logged} (shards 0..${logged - 1}): start it with the cluster's count (--shard I/S, SIDX__CLUSTER__SHARDS)`, { field: 'cluster.shards' });
        }
        if (await this.#cas('shards', shards, 0)) return;
        // Another node recorded it first (compare with that), or the bucket refused the write: not for ever.
        if (attempt >= 10) throw new SidxError('SIDX_ERR_CLUSTER', `registry bucket ${this.bucket}: could not record the shard count`);
        await sleep(100);
        continue;
      }
      if (recorded.value === shards) return;
      throw new SidxError('SIDX_ERR_CONFIG', `${node} was started with ${shards} shard(s), but the cluster of registry bucket `
        + `${this.bucket} has ${recorded.value} (recorded by its first node): start it with --shard I/${recorded.value} `
        + `(SIDX__CLUSTER__SHARDS=${recorded.value}); a cluster keeps its count (another count needs another registry bucket and write log)`, { field: 'cluster.shards' });
    }
  }

  async #get<T>(key: string): Promise<{ value: T; revision: number } | null> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return null;
    return { value: decodeJson<T>(e.value), revision: e.revision };
  }

  async #list<T>(filter: string): Promise<T[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(filter)) keys.push(k);
    const out: T[] = [];
    for (const k of keys.sort()) {
      const e = await this.#get<T>(k);
      if (e) out.push(e.value);
    }
    return out;
  }

  /** Puts `value` at `key` if its revision is still `revision` (0: the key must not exist); false when it moved. */
  async #cas(key: string, value: unknown, revision: number): Promise<boolean> {
    try {
      if (revision === 0) await this.kv.create(key, encodeJson(value));
      else await this.kv.update(key, encodeJson(value), revision);
      return true;
    } catch {
      return false;
    }
  }

  models(): Promise<RegisteredModel[]> {
    return this.#list<RegisteredModel>('model.>').then((ms) => ms.sort((a, b) => a.version - b.version));
  }

  async model(id: string): Promise<RegisteredModel | null> {
    return (await this.#get<RegisteredModel>(`model.${id}`))?.value ?? null;
  }

  /**
   * Registers a model (idempotent: the same id with the same sha256 returns the entry; another sha256 is refused).
   * `created` is false when it was there already.
   */
  async register(m: Omit<RegisteredModel, 'version' | 'createdAt' | 'activatedAt'>): Promise<{ model: RegisteredModel; created: boolean }> {
    for (;;) {
      const existing = await this.model(m.id);
      if (existing) {
        if (existing.sha256 !== m.sha256) {
          throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${m.id} is already registered with sha256 ${existing.sha256} (its files at ${existing.path}${isAbsolute(existing.path) ? '' : ' under model.registryDir'}), not this bundle's ${m.sha256}: ${CHANGED_BUNDLE_HINT}`, { field: 'path' });
        }
        return { model: existing, created: false };
      }
      const counter = await this.#get<number>('version');
      const version = (counter?.value ?? 0) + 1;
      if (!(await this.#cas('version', version, counter?.revision ?? 0))) continue;
      const entry: RegisteredModel = { ...m, version, createdAt: new Date().toISOString() };
      if (await this.#cas(`model.${m.id}`, entry, 0)) return { model: entry, created: true };
    }
  }

  async active(): Promise<ActiveEntry | null> {
    return (await this.#get<ActiveEntry>('active'))?.value ?? null;
  }

  /** Makes `model` the active one (and marks it activated once); `onlyIfNone`: only when no model is active yet. */
  async setActive(model: RegisteredModel, job: string | null, onlyIfNone = false): Promise<boolean> {
    const entry: ActiveEntry = { model: model.id, sha256: model.sha256, job, since: new Date().toISOString() };
    if (onlyIfNone) {
      if (!(await this.#cas('active', entry, 0))) return false;
    } else {
      await this.kv.put('active', encodeJson(entry));
    }
    for (;;) {
      const cur = await this.#get<RegisteredModel>(`model.${model.id}`);
      if (!cur || cur.value.activatedAt) return true;
      if (await this.#cas(`model.${model.id}`, { ...cur.value, activatedAt: entry.since }, cur.revision)) return true;
    }
  }

  /** Records a new job as the running one; SIDX_ERR_CONFLICT when another is unfinished. */
  async createJob(job: ClusterJob): Promise<void> {
    if (!(await this.#cas('running', job.id, 0))) {
      const other = (await this.#get<string>('running'))?.value;
      throw new SidxError('SIDX_ERR_CONFLICT', `re-index ${other} is under way`, { field: 'model' });
    }
    await this.kv.put(`job.${job.id}`, encodeJson(job));
  }

  async running(): Promise<string | null> {
    return (await this.#get<string>('running'))?.value ?? null;
  }

  async job(id: string): Promise<{ value: ClusterJob; revision: number } | null> {
    return this.#get<ClusterJob>(`job.${id}`);
  }

  /** Moves job `id` from one of `from` to `status` (once, whoever asks); the job as it then is, or null if unknown. */
  async transition(id: string, from: readonly ClusterJobStatus[], status: ClusterJobStatus, error: string | null = null): Promise<ClusterJob | null> {
    for (;;) {
      const cur = await this.job(id);
      if (!cur) return null;
      if (!from.includes(cur.value.status)) return cur.value;
      const next: ClusterJob = { ...cur.value, status, error: error ?? cur.value.error, updatedAt: new Date().toISOString() };
      if (await this.#cas(`job.${id}`, next, cur.revision)) return next;
    }
  }

  /** Frees `running` if it is still job `id`. */
  async release(id: string): Promise<void> {
    const cur = await this.#get<string>('running');
    if (cur?.value === id) await this.kv.delete('running', { previousSeq: cur.revision }).catch(() => undefined);
  }

  progress(job: string): Promise<ReplicaProgress[]> {
    return this.#list<ReplicaProgress>(`progress.${job}.>`);
  }

  async putProgress(p: ReplicaProgress): Promise<void> {
    await this.kv.put(`progress.${p.job}.${p.shard}.${keyToken(p.replica)}`, encodeJson(p));
  }

  /** Calls `onChange(key)` for every change of the bucket from now on, until the returned stop is called. */
  async watch(onChange: (key: string) => void): Promise<() => void> {
    const it = await this.kv.watch({ include: 'updates' });
    void (async () => {
      for await (const e of it) onChange(e.key);
    })().catch(() => undefined);
    return () => it.stop();
  }
}
