/**
 * SQLite control plane (better-sqlite3, synchronous): model registry and re-index jobs. The schema comes only
 * from the numbered files in the repository's top-level `migrations/`, applied at open (migrate.ts).
 * WAL journal with synchronous=FULL: a call that returned has committed and survives a crash.
 */
import Database from 'better-sqlite3';
import { CHANGED_BUNDLE_HINT, isSidxError, SidxError } from '../errors.ts';
import { repoPath } from '../paths.ts';
import { assertCodebookSizes } from '../sid/codec.ts';
import { appliedMigrations, migrate, type AppliedMigration } from './migrate.ts';
import { ApiKeyStore } from './api-keys.ts';
import { JobStateStore } from './job-state.ts';

export type { AppliedMigration } from './migrate.ts';

/** Absolute path of the repository's `migrations/` directory. */
export const MIGRATIONS_DIR = repoPath('migrations/');

export type ModelMethod = 'rqkmeans' | 'rqvae' | 'vqvae';
export type ModelStatus = 'registered' | 'active' | 'retired';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

const METHODS: readonly string[] = ['rqkmeans', 'rqvae', 'vqvae'];
const JOB_STATUSES: readonly string[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const MAX_MODEL_VERSION = 0xffff;

export interface RegisterModelInput {
  id: string;
  method: ModelMethod;
  inputDim: number;
  codebookSizes: readonly number[];
  path: string;
  sha256: string;
  metrics?: Record<string, unknown>;
}

export interface ModelRow {
  id: string;
  /** Small integer used in LMDB SID keys. */
  version: number;
  method: ModelMethod;
  inputDim: number;
  levels: number;
  codebookSizes: number[];
  path: string;
  sha256: string;
  metrics: Record<string, unknown>;
  status: ModelStatus;
  createdAt: string;
}

export interface JobRow {
  id: string;
  kind: string;
  modelId: string | null;
  status: JobStatus;
  processed: number;
  total: number | null;
  error: string | null;
  createdAt: string;
  updatedAt: string;
}

interface ModelDbRow {
  id: string;
  version: number;
  method: string;
  input_dim: number;
  levels: number;
  codebook_sizes: string;
  path: string;
  sha256: string;
  metrics: string;
  status: string;
  created_at: string;
}

interface JobDbRow {
  id: string;
  kind: string;
  model_id: string | null;
  status: string;
  processed: number;
  total: number | null;
  error: string | null;
  created_at: string;
  updated_at: string;
}

function toModel(r: ModelDbRow): ModelRow {
  return {
    id: r.id,
    version: r.version,
    method: r.method as ModelMethod,
    inputDim: r.input_dim,
    levels: r.levels,
    codebookSizes: JSON.parse(r.codebook_sizes) as number[],
    path: r.path,
    sha256: r.sha256,
    metrics: JSON.parse(r.metrics) as Record<string, unknown>,
    status: r.status as ModelStatus,
    createdAt: r.created_at,
  };
}

function toJob(r: JobDbRow): JobRow {
  return {
    id: r.id,
    kind: r.kind,
    modelId: r.model_id,
    status: r.status as JobStatus,
    processed: r.processed,
    total: r.total,
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

function storeError(err: unknown, what: string): SidxError {
  if (isSidxError(err)) return err;
  return new SidxError('SIDX_ERR_STORE', `control plane ${what} failed: ${(err as Error).message}`, { cause: err });
}

function validateModel(m: RegisterModelInput): void {
  if (typeof m.id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(m.id)) {
    throw invalid('model id must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit', 'id');
  }
  if (!METHODS.includes(m.method)) throw invalid(`method must be one of ${METHODS.join(', ')}`, 'method');
  if (!Number.isInteger(m.inputDim) || m.inputDim < 1) throw invalid('inputDim must be a positive integer', 'inputDim');
  if (!Array.isArray(m.codebookSizes)) throw invalid('codebookSizes must be an array', 'codebookSizes');
  assertCodebookSizes(m.codebookSizes);
  if (typeof m.path !== 'string' || m.path.length === 0) throw invalid('path must be a non-empty string', 'path');
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)) throw invalid('sha256 must be 64 lowercase hex digits', 'sha256');
  if (m.metrics !== undefined && (m.metrics === null || typeof m.metrics !== 'object' || Array.isArray(m.metrics))) {
    throw invalid('metrics must be an object', 'metrics');
  }
}

export class ControlPlane {
  #db: Database.Database;
  /** API keys (api-keys.ts). */
  readonly keys: ApiKeyStore;
  /** Phase, cursor, parameters and result of jobs (job-state.ts). */
  readonly jobState: JobStateStore;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.keys = new ApiKeyStore(db);
    this.jobState = new JobStateStore(db);
  }

  /** Opens (creating if needed) the database and applies pending migrations from `migrationsDir`. */
  static open(dbPath: string, migrationsDir: string = MIGRATIONS_DIR): ControlPlane {
    let db: Database.Database;
    try {
      db = new Database(dbPath);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw storeError(err, `open of ${dbPath}`);
    }
    try {
      migrate(db, migrationsDir);
    } catch (err) {
      db.close();
      throw storeError(err, 'migration');
    }
    return new ControlPlane(db);
  }

  appliedMigrations(): AppliedMigration[] {
    return appliedMigrations(this.#db);
  }

  /**
   * Registers a model bundle and assigns its version: one more than the highest so far, starting at 1, never reused.
   * Idempotent: the same id with the same sha256 returns the existing row; with another sha256 it is an error.
   */
  registerModel(input: RegisterModelInput): ModelRow {
    validateModel(input);
    try {
      return this.#db
        .transaction(() => {
          const existing = this.#db.prepare('SELECT * FROM models WHERE id = ?').get(input.id) as ModelDbRow | undefined;
          if (existing) {
            if (existing.sha256 !== input.sha256) {
              throw invalid(`model ${input.id} is already registered with sha256 ${existing.sha256} (its files at ${existing.path}), not this bundle's ${input.sha256}: ${CHANGED_BUNDLE_HINT}`, 'sha256');
            }
            return toModel(existing);
          }
          const { next } = this.#db.prepare('SELECT COALESCE(MAX(version) + 1, 1) AS next FROM models').get() as { next: number };
          if (next > MAX_MODEL_VERSION) throw new SidxError('SIDX_ERR_STORE', 'model versions exhausted (u16)');
          this.#db
            .prepare(
              `INSERT INTO models (id, version, method, input_dim, levels, codebook_sizes, path, sha256, metrics, status, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?)`,
            )
            .run(
              input.id,
              next,
              input.method,
              input.inputDim,
              input.codebookSizes.length,
              JSON.stringify(input.codebookSizes),
              input.path,
              input.sha256,
              JSON.stringify(input.metrics ?? {}),
              new Date().toISOString(),
            );
          return toModel(this.#db.prepare('SELECT * FROM models WHERE id = ?').get(input.id) as ModelDbRow);
        })
        .immediate();
    } catch (err) {
      throw storeError(err, 'registerModel');
    }
  }

  getModel(id: string): ModelRow | undefined {
    const row = this.#db.prepare('SELECT * FROM models WHERE id = ?').get(id) as ModelDbRow | undefined;
    return row && toModel(row);
  }

  /** The model whose SID keys use `version` (the small integer in LMDB keys). */
  modelByVersion(version: number): ModelRow | undefined {
    const row = this.#db.prepare('SELECT * FROM models WHERE version = ?').get(version) as ModelDbRow | undefined;
    return row && toModel(row);
  }

  listModels(): ModelRow[] {
    return (this.#db.prepare('SELECT * FROM models ORDER BY version').all() as ModelDbRow[]).map(toModel);
  }

  /** Makes `id` the one active model; the previously active one becomes 'retired'. */
  activateModel(id: string): ModelRow {
    try {
      return this.#db
        .transaction(() => {
          const row = this.#db.prepare('SELECT * FROM models WHERE id = ?').get(id) as ModelDbRow | undefined;
          if (!row) throw new SidxError('SIDX_ERR_UNKNOWN_MODEL', `no model ${JSON.stringify(id)}`, { field: 'id' });
          if (row.status !== 'active') {
            this.#db.prepare("UPDATE models SET status = 'retired' WHERE status = 'active'").run();
            this.#db.prepare("UPDATE models SET status = 'active' WHERE id = ?").run(id);
          }
          return toModel(this.#db.prepare('SELECT * FROM models WHERE id = ?').get(id) as ModelDbRow);
        })
        .immediate();
    } catch (err) {
      throw storeError(err, 'activateModel');
    }
  }

  activeModel(): ModelRow | undefined {
    const row = this.#db.prepare("SELECT * FROM models WHERE status = 'active'").get() as ModelDbRow | undefined;
    return row && toModel(row);
  }

  createJob(input: { id: string; kind: string; modelId?: string; total?: number }): JobRow {
    if (typeof input.id !== 'string' || input.id.length === 0) throw invalid('job id must be a non-empty string', 'id');
    if (typeof input.kind !== 'string' || input.kind.length === 0) throw invalid('job kind must be a non-empty string', 'kind');
    if (input.modelId !== undefined && !this.getModel(input.modelId)) {
      throw new SidxError('SIDX_ERR_UNKNOWN_MODEL', `no model ${JSON.stringify(input.modelId)}`, { field: 'modelId' });
    }
    const now = new Date().toISOString();
    try {
      this.#db
        .prepare('INSERT INTO jobs (id, kind, model_id, status, processed, total, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)')
        .run(input.id, input.kind, input.modelId ?? null, 'queued', input.total ?? null, now, now);
    } catch (err) {
      throw storeError(err, 'createJob');
    }
    return this.getJob(input.id)!;
  }

  /** Updates status and/or progress of a job; unknown ids throw SIDX_ERR_NOT_FOUND. */
  updateJob(id: string, patch: { status?: JobStatus; processed?: number; total?: number; error?: string | null }): JobRow {
    if (patch.status !== undefined && !JOB_STATUSES.includes(patch.status)) throw invalid(`unknown job status ${patch.status}`, 'status');
    try {
      const res = this.#db
        .prepare(
          `UPDATE jobs SET status = COALESCE(?, status), processed = COALESCE(?, processed), total = COALESCE(?, total),
             error = CASE WHEN ? THEN ? ELSE error END, updated_at = ? WHERE id = ?`,
        )
        .run(
          patch.status ?? null,
          patch.processed ?? null,
          patch.total ?? null,
          patch.error !== undefined ? 1 : 0,
          patch.error ?? null,
          new Date().toISOString(),
          id,
        );
      if (res.changes === 0) throw new SidxError('SIDX_ERR_NOT_FOUND', `no job ${JSON.stringify(id)}`, { field: 'id' });
    } catch (err) {
      throw storeError(err, 'updateJob');
    }
    return this.getJob(id)!;
  }

  getJob(id: string): JobRow | undefined {
    const row = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobDbRow | undefined;
    return row && toJob(row);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
