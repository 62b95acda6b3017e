/**
 * A model as the service uses it: its registry row's version (the LMDB key space), its bundle and an encoder
 * pool. The service serves one (the active model); a re-index holds a second (the target) until the swap.
 */
import { availableParallelism } from 'node:os';
import { access, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { CHANGED_BUNDLE_HINT, SidxError } from '../errors.ts';
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
 * What an encoder pool is for: `serve` (the service's queries, upserts and jobs), `batch` (batched retrieval: sidx
 * eval) or `index` (a bulk load, sidx index: encodes only, so its workers open no beam sessions).
 */
export type EncoderUse = 'serve' | 'batch' | 'index';

export interface EncoderThreads {
  workers: number;
  intraOpThreads: number;
}

/**
 * `encoder.workers` and `encoder.intraOpThreads`, with 0 resolved. On CUDA one session. On CPU, to serve: one
 * single-threaded session per two cores (at least one, at most 4), so that the encoder's threads take at most half
 * the cores: under load the queries that arrive while the worker runs share its next run, whose fixed cost is then
 * paid once, and the event loop and the rerank's pool threads keep the other cores (docs/benchmarks.md, "Encoder
 * threads: half the cores"). For a bulk load: one session per core (at most 4), its large batches split across them.
 */
export function encoderThreads(encoder: Config['encoder'], use: EncoderUse = 'serve'): EncoderThreads {
  const cores = availableParallelism();
  const coresPerWorker = use === 'serve' ? 2 : 1;
  const workers = encoder.workers > 0 ? encoder.workers
    : encoder.provider === 'cuda' ? 1 : Math.max(1, Math.min(MAX_AUTO_WORKERS, Math.floor(cores / coresPerWorker)));
  const intraOpThreads = encoder.intraOpThreads > 0 ? encoder.intraOpThreads : Math.max(1, Math.floor(cores / (coresPerWorker * workers)));
  return { workers, intraOpThreads };
}

const MAX_AUTO_WORKERS = 4;

/**
 * Starts the encoder pool of a bundle for `use` (logging the provider in use, and why when it is not the one asked
 * for); `workers` overrides the worker count encoderThreads gives (its intra-op threads stay as they are).
 */
export async function openSpace(bundle: ModelBundle, version: number, config: Readonly<Config>, log: Logger, metrics: SidxMetrics,
  use: EncoderUse = 'serve', workers?: number): Promise<ModelSpace> {
  const m = bundle.manifest;
  const threads = encoderThreads(config.encoder, use);
  const pool = await EncoderPool.create(bundle, {
    ...threads,
    workers: workers ?? threads.workers,
    beamModel: use === 'index' ? 'none' : undefined,
    provider: config.encoder.provider,
    spinWait: config.encoder.spinWait,
    nice: config.server.threadNice,
    inline: config.encoder.inline,
    log: (level, msg) => (level === 'warn' ? log.warn(msg) : log.info(msg)),
  });
  instrumentEncoder(pool, metrics);
  log.info(`encoder: model ${m.id} (${m.method}, ${m.levels} x [${m.codebookSizes.join(', ')}]) on ${pool.provider}`);
  if (config.encoder.provider !== pool.provider) log.warn(`encoder: provider ${config.encoder.provider} requested, running on ${pool.provider} (reason above)`);
  return { info: infoOf(bundle, version), bundle, pool };
}

/**
 * Loads the bundle in `dir` (under model.registryDir) for registration, checked: model.json valid, encoder.onnx
 * loads in ONNX Runtime and encodes a probe row into codes within the codebooks, input dimension and metric equal
 * to the served model's (the catalog's vectors and the vector slot file are shared by every model).
 */
export async function checkBundle(dir: string, served: ModelInfo, config: Readonly<Config>, log: Logger, metrics: SidxMetrics): Promise<ModelBundle> {
  const bundle = await loadBundle(dir, { root: config.model.registryDir }).catch((err: SidxError) => {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', err.message, { field: 'path', cause: err });
  });
  const m = bundle.manifest;
  if (m.inputDim !== served.inputDim) {
    throw new SidxError('SIDX_ERR_DIMENSION', `model ${m.id} takes ${m.inputDim}-d embeddings, the catalog holds ${served.inputDim}-d`, { field: 'path' });
  }
  if (m.metric !== served.metric) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${m.id} scores by ${m.metric}, the catalog's vector index by ${served.metric}`, { field: 'path' });
  }
  let probe: ModelSpace | undefined;
  try {
    probe = await openSpace(bundle, 0, config, log, metrics, 'serve', 1);
    const row = Float32Array.from({ length: m.inputDim }, (_, j) => Math.sin(j + 1));
    const { codes } = await probe.pool.encode(row, 1);
    if (codes.length !== m.levels || codes.some((c, l) => c < 0 || c >= m.codebookSizes[l]!)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${m.id}: encoder.onnx gave codes [${Array.from(codes).join(', ')}] outside its codebooks`, { field: 'path' });
    }
  } catch (err) {
    if (err instanceof SidxError && err.code === 'SIDX_ERR_INVALID_INPUT') throw err;
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${m.id}: ${(err as Error).message}`, { field: 'path', cause: err });
  } finally {
    await probe?.pool.close();
  }
  return bundle;
}

/** A registered model's bundle, checked to be the one registered (same digest). */
export async function loadRegistered(row: ModelRow): Promise<ModelBundle> {
  const bundle = await loadBundle(row.path);
  if (bundle.sha256 !== row.sha256) {
    throw new SidxError('SIDX_ERR_MODEL_BUNDLE', `${row.path}: the bundle changed since model ${row.id} was registered (sha256 ${bundle.sha256}, registered ${row.sha256}): ${CHANGED_BUNDLE_HINT}`, { field: 'path' });
  }
  return bundle;
}

/**
 * Which model to serve at start. The catalog names the key space it serves (set at every start and by a re-index
 * swap), so a re-indexed catalog keeps its model whatever `model.dir` says (with a warning, or with `refuseOther`
 * refused: SIDX_ERR_CONFLICT naming `refuseOther.dataDir`); `model.dir` decides when nothing is served yet, or when
 * the catalog is empty and no re-index is under way.
 */
export function chooseServed(control: ControlPlane, catalog: Catalog, configured: ModelRow, reindexing: boolean, log: Logger,
  refuseOther?: { dataDir: string }): ModelRow {
  const pinned = catalog.spaces.activeModel;
  const row = pinned !== undefined ? control.modelByVersion(pinned) : control.activeModel();
  if (row === undefined || (catalog.count === 0 && !reindexing)) return configured;
  if (row.id !== configured.id && refuseOther) {
    throw new SidxError('SIDX_ERR_CONFLICT', `the catalog in ${refuseOther.dataDir} is served by model ${row.id}, not ${configured.id}: `
      + 're-index it (POST /v1/reindex) to change models');
  }
  if (row.id !== configured.id) {
    log.warn(`model.dir holds ${configured.id}, but the catalog is served by ${row.id}: serving ${row.id} (POST /v1/reindex changes models)`);
  }
  return row;
}

/**
 * Resolves `path` under `root`, refusing anything outside it (after symlinks). A path that is missing and one that
 * leads outside get the same answer, and a path outside by its text is refused before the file system is asked:
 * the error never tells a client whether something exists outside the models directory. The answer names the
 * models directory and, when a tail of `path` is a bundle under it ("models/x" for "x"), suggests that.
 */
export async function pathUnder(root: string, path: string): Promise<string> {
  const base = await realpath(resolve(root)).catch(() => {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `the models directory ${root} does not exist`, { field: 'path' });
  });
  const refused = async () => {
    const near = await bundleTail(base, path);
    return new SidxError('SIDX_ERR_INVALID_INPUT', `no bundle directory ${JSON.stringify(path)} under the models directory ${resolve(root)} `
      + `(model.registryDir; paths are relative to it)${near === undefined ? '' : `: did you mean ${JSON.stringify(near)}?`}`, { field: 'path' });
  };
  if (outside(base, resolve(base, path))) throw await refused();
  const target = await realpath(resolve(base, path)).catch(() => null);
  if (target === null || outside(base, target)) throw await refused();
  return target;
}

function outside(base: string, p: string): boolean {
  const rel = relative(base, p);
  return rel.startsWith('..') || isAbsolute(rel);
}

/** The longest tail of `path`'s segments (no "..") that is a bundle directory (with a model.json) under `base`, after symlinks. */
async function bundleTail(base: string, path: string): Promise<string | undefined> {
  const segments = path.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
  for (let i = isAbsolute(path) ? 0 : 1; i < segments.length; i++) {
    const tail = segments.slice(i);
    if (tail.includes('..')) continue;
    const dir = await realpath(resolve(base, ...tail)).catch(() => null);
    if (dir === null || outside(base, dir)) continue;
    if (await access(join(dir, 'model.json')).then(() => true, () => false)) return tail.join('/');
  }
  return undefined;
}

/** SIDX_ERR_UNKNOWN_MODEL naming the registered ids (those containing `id` first, at most MAX_NAMED). */
export function unknownModel(id: string, registered: readonly string[], field: string): SidxError {
  const MAX_NAMED = 8;
  const near = (m: string) => (m.toLowerCase().includes(id.toLowerCase()) ? 0 : 1);
  const ids = [...registered].sort((a, b) => near(a) - near(b));
  const named = ids.slice(0, MAX_NAMED).join(', ') + (ids.length > MAX_NAMED ? ` and ${ids.length - MAX_NAMED} more (GET /v1/models)` : '');
  return new SidxError('SIDX_ERR_UNKNOWN_MODEL', `no model ${JSON.stringify(id)} (${ids.length === 0 ? 'none registered' : `registered: ${named}`}; `
    + 'POST /v1/models registers one)', { field });
}

/** Closes a pool once nothing is queued or running on it (requests that encoded before a swap finish first). */
export async function closeWhenIdle(pool: EncoderPool, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((pool.queueLength > 0 || pool.inFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await pool.close();
}
