/**
 * A real service for integration tests: a small RQ-KMeans-style bundle built from fixed random codebooks with
 * the project's ONNX graph builder, LMDB + SQLite in a temp dir, FAISS through the addon, and the Fastify app.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config, type ConfigOverrides } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { buildResidualEncoder } from '../../src/numeric/residual-encoder.ts';
import { SidxService } from '../../src/service/sidx-service.ts';
import { writeBundle, type ModelManifest } from '../../src/tokenizer/bundle.ts';
import { exportRqKmeansBundle } from '../../src/train/export.ts';
import { randomMatrix } from './random.ts';

export interface TestBundleSpec {
  dim: number;
  levels: number;
  codebookSize: number;
  seed: number;
  topM?: number;
}

/** Codebooks shrink by half per level, like trained residual codebooks. */
export async function writeTestBundle(dir: string, spec: TestBundleSpec): Promise<ModelManifest> {
  const codebooks = Array.from({ length: spec.levels }, (_, l) =>
    randomMatrix(spec.codebookSize, spec.dim, spec.seed + l, 0.5 ** l),
  );
  const topM = Math.min(spec.topM ?? 8, spec.codebookSize);
  const manifest: ModelManifest = {
    id: `test-rq-${spec.levels}x${spec.codebookSize}-d${spec.dim}-s${spec.seed}`,
    method: 'rqkmeans',
    inputDim: spec.dim,
    normalize: 'none',
    levels: spec.levels,
    codebookSizes: Array(spec.levels).fill(spec.codebookSize),
    latentDim: spec.dim,
    metric: 'ip',
    topM,
    opset: 17,
  };
  await writeBundle(dir, manifest, buildResidualEncoder({ codebooks, dim: spec.dim, normalize: 'none', topM }));
  return manifest;
}

/** A bundle as `sidx train-rqkmeans` exports it (encoder.onnx and beam.onnx) from the given codebooks, ip, no normalisation. */
export async function writeBeamBundle(dir: string, id: string, dim: number, codebooks: Float32Array[], codebookSize: number): Promise<void> {
  await exportRqKmeansBundle({
    dir, id, model: { dim, normalize: 'none', codebookSizes: Array(codebooks.length).fill(codebookSize), codebooks },
    training: { source: 'random', command: 'test', seed: 0, dataDigest: '0'.repeat(64) },
  });
}

/** Upserts rows [0, n) of `vectors` as items "item-<row>" through POST /v1/items, `batch` per request: the SIDs, by row. */
export async function upsertRows(app: FastifyInstance, vectors: Float32Array, dim: number, n: number, batch: number): Promise<number[][]> {
  const sids: number[][] = [];
  for (let start = 0; start < n; start += batch) {
    const items = [];
    for (let i = start; i < Math.min(n, start + batch); i++) items.push({ id: `item-${i}`, embedding: Array.from(vectors.subarray(i * dim, (i + 1) * dim)) });
    const res = await app.inject({ method: 'POST', url: '/v1/items', payload: { items } });
    if (res.statusCode !== 200) throw new Error(`upsert of rows ${start}.. answered ${res.statusCode}: ${res.body}`);
    for (const it of res.json().items) sids.push(it.sid);
  }
  return sids;
}

export const silentLog = { info: () => {}, warn: () => {} };

export interface RunningService {
  app: FastifyInstance;
  service: SidxService;
  config: Readonly<Config>;
  close(): Promise<void>;
}

/** The service's `sidx_vector_clamped_items` gauge, read from GET /metrics. */
export async function clampedItemsGauge(svc: RunningService): Promise<number> {
  const text = (await svc.app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(/^sidx_vector_clamped_items (\S+)$/m.exec(text)?.[1]);
}

/** Upserts row i of `rows` (dim floats each, as JSON arrays) as ids[i]; throws unless answered 200. */
export async function putRows(svc: RunningService, dim: number, ids: string[], rows: Float32Array): Promise<void> {
  const items = ids.map((id, i) => ({ id, embedding: Array.from(rows.subarray(i * dim, (i + 1) * dim)) }));
  const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items } });
  if (res.statusCode !== 200) throw new Error(`POST /v1/items answered ${res.statusCode}: ${res.body}`);
}

export async function startService(
  dataDir: string,
  modelDir: string,
  limits: Partial<Config['limits']> = {},
  overrides: ConfigOverrides = {},
): Promise<RunningService> {
  const config = loadConfig({ ...overrides, storage: { ...overrides.storage, dataDir }, model: { ...overrides.model, dir: modelDir }, limits }, {});
  const service = await SidxService.open(config, silentLog);
  const app = await buildApp({ service, config });
  return {
    app,
    service,
    config,
    async close() {
      await app.close();
      await service.close();
    },
  };
}

export function bundleDir(root: string): string {
  return join(root, 'model');
}

/**
 * The re-index tests' two models under `root`/models: a (2 x 8) that the service on `root`/data serves, and b
 * (3 x 4), the target (not registered yet); `open` starts the service (again, after a stop).
 */
export async function twoModelService(root: string, dim: number): Promise<{ models: string; dataDir: string; idB: string; open: () => Promise<RunningService> }> {
  const models = join(root, 'models');
  const dataDir = join(root, 'data');
  await writeTestBundle(join(models, 'a'), { dim, levels: 2, codebookSize: 8, seed: 1 });
  const idB = (await writeTestBundle(join(models, 'b'), { dim, levels: 3, codebookSize: 4, seed: 2 })).id;
  const open = () => startService(dataDir, join(models, 'a'), { maxBatch: 1000 }, { model: { registryDir: models } });
  return { models, dataDir, idB, open };
}
