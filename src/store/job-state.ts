/**
 * Where a job stands (migrations/0003_reindex_jobs.sql): phase, resume cursor, parameters and result, beside the
 * generic status/progress columns of `jobs` (control-plane.ts). Each update is one committed statement
 * (synchronous=FULL), so after a crash a job resumes from the last cursor it recorded.
 */
import type Database from 'better-sqlite3';
import { SidxError } from '../errors.ts';

export interface JobState {
  phase: string | null;
  /** Internal key of the last item of the last committed batch of the phase (0n: none yet). */
  cursor: bigint;
  params: Record<string, unknown>;
  result: Record<string, unknown>;
}

interface StateRow {
  phase: string | null;
  cursor: string | null;
  params: string;
  result: string;
}

export class JobStateStore {
  #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  get(id: string): JobState | undefined {
    const row = this.#db.prepare('SELECT phase, cursor, params, result FROM jobs WHERE id = ?').get(id) as StateRow | undefined;
    if (!row) return undefined;
    return {
      phase: row.phase,
      cursor: BigInt(row.cursor ?? '0'),
      params: JSON.parse(row.params) as Record<string, unknown>,
      result: JSON.parse(row.result) as Record<string, unknown>,
    };
  }

  /** Sets the given fields (and updated_at); unknown ids throw SIDX_ERR_JOB_NOT_FOUND. */
  set(id: string, patch: { phase?: string; cursor?: bigint; params?: Record<string, unknown>; result?: Record<string, unknown> }): void {
    const res = this.#db.prepare(
      `UPDATE jobs SET phase = COALESCE(?, phase), cursor = COALESCE(?, cursor), params = COALESCE(?, params),
         result = COALESCE(?, result), updated_at = ? WHERE id = ?`,
    ).run(
      patch.phase ?? null,
      patch.cursor === undefined ? null : patch.cursor.toString(),
      patch.params === undefined ? null : JSON.stringify(patch.params),
      patch.result === undefined ? null : JSON.stringify(patch.result),
      new Date().toISOString(),
      id,
    );
    if (res.changes === 0) throw new SidxError('SIDX_ERR_JOB_NOT_FOUND', `no job ${JSON.stringify(id)}`, { field: 'id' });
  }

  /** Jobs of `kind` a restart must carry on: queued or running, or finished with cleanup left to do. */
  unfinished(kind: string): string[] {
    const rows = this.#db.prepare(
      `SELECT id FROM jobs WHERE kind = ? AND (status IN ('queued', 'running') OR (phase = 'cleanup'))
       ORDER BY created_at, id`,
    ).all(kind) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }
}
