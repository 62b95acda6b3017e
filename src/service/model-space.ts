/**
 * A model as the service uses it: its registry row's version (the LMDB key space), its bundle and an encoder
 * pool. The service serves one (the active model); a re-index holds a second (the target) until the swap.
 */
import { availableParallelism } from 'node:os';
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import type { Catalog } from '../store/catalog.ts';
import type { ControlPlane, ModelRow } from '../store/control-plane.ts';
import { loadBundle, type ModelBundle } from '../tokenizer/bundle.ts';
import { EncoderPool } from '../tokenizer/encoder-pool.ts';
import { instrumentEncoder } from './instrument.ts';
import type { SidxMetrics } from './metrics.ts';
import type { ModelInfo } from './types.ts';
import type { Logger } from './vector-state.ts';

export interface ActiveModel extends ModelInfo {
  /** Small integer naming the model's key space in LMDB. */
  version: number;
}

export interface ModelSpace {
  info: ActiveModel;
  bundle: ModelBundle;
  pool: EncoderPool;
}

export function infoOf(bundle: ModelBundle, version: number): ActiveModel {
  const m = bundle.manifest;
  return { id: m.id, version, inputDim: m.inputDim, levels: m.levels, codebookSizes: m.codebookSizes, metric: m.metric };
}

export function registerBundle(control: ControlPlane, bundle: ModelBundle): ModelRow {
  const m = bundle.manifest;
  return control.registerModel({
    id: m.id, method: m.method, inputDim: m.inputDim, codebookSizes: m.codebookSizes, path: bundle.dir, sha256: bundle.sha256, metrics: m.metrics ?? {},
  });
}

/**
 * `encoder.workers`, with 0 resolved: on CPU one single-threaded session per core serves concurrent queries in
 * parallel (a one-row run on a 2-thread session was 2-4x slower than on one thread here, docs/benchmarks.md), and
 * large batches are split across the workers; on CUDA one session.
 */
export function encoderWorkers(encoder: Config['encoder']): number {
  if (encoder.workers > 0) return encoder.workers;
  return encoder.provider === 'cuda' ? 1 : Math.min(MAX_AUTO_WORKERS, availableParallelism());
}

const MAX_AUTO_WORKERS = 4;

/** Starts the encoder pool of a bundle (logging the provider in use, and why when it is not the one asked for). */
export async function openSpace(bundle: ModelBundle, version: number, config: Readonly<Config>, log: Logger, metrics: SidxMetrics,
  workers = encoderWorkers(config.encoder)): Promise<ModelSpace> {
  const m = bundle.manifest;
  const pool = await EncoderPool.create(bundle, {
    workers,
    provider: config.encoder.provider,
    intraOpThreads: config.encoder.intraOpThreads || undefined,
    log: (level, msg) => (level === 'warn' ? log.warn(msg) : log.info(msg)),
  });
  instrumentEncoder(pool, metrics);
  log.info(`encoder: model ${m.id} (${m.method}, ${m.levels} x [${m.codebookSizes.join(', ')}]) on ${pool.provider}`);
  if (config.encoder.provider !== pool.provider) log.warn(`encoder: provider ${config.encoder.provider} requested, running on ${pool.provider} (reason above)`);
  return { info: infoOf(bundle, version), bundle, pool };
}

/** A registered model's bundle, checked to be the one registered (same digest). */
export async function loadRegistered(row: ModelRow): Promise<ModelBundle> {
  const bundle = await loadBundle(row.path);
  if (bundle.sha256 !== row.sha256) {
    throw new SidxError('SIDX_ERR_MODEL_BUNDLE', `${row.path}: the bundle changed since model ${row.id} was registered (sha256 ${bundle.sha256}, registered ${row.sha256})`, { field: 'path' });
  }
  return bundle;
}

/**
 * Which model to serve at start. The catalog names the key space it serves (set at every start and by a re-index
 * swap), so a re-indexed catalog keeps its model whatever `model.dir` says; `model.dir` decides when nothing is
 * served yet, or when the catalog is empty and no re-index is under way.
 */
export function chooseServed(control: ControlPlane, catalog: Catalog, configured: ModelRow, reindexing: boolean, log: Logger): ModelRow {
  const pinned = catalog.spaces.activeModel;
  const row = pinned !== undefined ? control.modelByVersion(pinned) : control.activeModel();
  if (row === undefined || (catalog.count === 0 && !reindexing)) return configured;
  if (row.id !== configured.id) {
    log.warn(`model.dir holds ${configured.id}, but the catalog is served by ${row.id}: serving ${row.id} (POST /v1/reindex changes models)`);
  }
  return row;
}

/** Resolves `path` under `root`, refusing anything outside it (after symlinks). */
export async function pathUnder(root: string, path: string): Promise<string> {
  const base = await realpath(resolve(root)).catch(() => {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `the models directory ${root} does not exist`, { field: 'path' });
  });
  const target = await realpath(resolve(base, path)).catch(() => {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `no bundle directory ${JSON.stringify(path)} under the models directory`, { field: 'path' });
  });
  const rel = relative(base, target);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${JSON.stringify(path)} is outside the models directory`, { field: 'path' });
  }
  return target;
}

/** Closes a pool once nothing is queued or running on it (requests that encoded before a swap finish first). */
export async function closeWhenIdle(pool: EncoderPool, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((pool.queueLength > 0 || pool.inFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await pool.close();
}
