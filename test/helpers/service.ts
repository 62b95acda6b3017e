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

export const silentLog = { info: () => {}, warn: () => {} };

export interface RunningService {
  app: FastifyInstance;
  service: SidxService;
  config: Readonly<Config>;
  close(): Promise<void>;
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
