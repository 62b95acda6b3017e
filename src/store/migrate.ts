/**
 * Applies `NNNN_name.sql` files from a migrations directory to a SQLite database, in numeric order, each in its
 * own transaction together with its row in `schema_migrations`. A failing file throws SIDX_ERR_STORE naming it
 * and leaves the earlier ones applied; files already recorded are never run again. A file must not contain its
 * own BEGIN/COMMIT, and PRAGMAs that cannot run inside a transaction (e.g. foreign_keys) have no effect there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { SidxError } from '../errors.ts';

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface MigrationFile {
  version: number;
  name: string;
  file: string;
}

export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: string;
}

/** The migration files of `dir`, sorted; any other `.sql` file or a repeated number is an error. */
export function listMigrations(dir: string): MigrationFile[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new SidxError('SIDX_ERR_STORE', `cannot read migrations directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const out: MigrationFile[] = [];
  for (const file of entries) {
    if (!file.endsWith('.sql')) continue;
    const m = MIGRATION_FILE.exec(file);
    if (!m) throw new SidxError('SIDX_ERR_STORE', `migration file ${file} is not named NNNN_name.sql`);
    out.push({ version: Number(m[1]), name: m[2], file });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) {
    if (out[i].version === out[i - 1].version) {
      throw new SidxError('SIDX_ERR_STORE', `migrations ${out[i - 1].file} and ${out[i].file} share number ${out[i].version}`);
    }
  }
  return out;
}

export function appliedMigrations(db: Database.Database): AppliedMigration[] {
  const rows = db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
    version: number;
    name: string;
    applied_at: string;
  }[];
  return rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
}

/** Applies the pending migrations of `dir`; returns the ones applied now. */
export function migrate(db: Database.Database, dir: string): MigrationFile[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const files = listMigrations(dir);
  const done = new Set(appliedMigrations(db).map((m) => m.version));
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: MigrationFile[] = [];
  for (const m of files) {
    if (done.has(m.version)) continue;
    const sql = readFileSync(join(dir, m.file), 'utf8');
    try {
      // IMMEDIATE: take the write lock first, so two processes starting together cannot both apply a file.
      db.transaction(() => {
        const again = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
        if (again) return;
        db.exec(sql);
        record.run(m.version, m.name, new Date().toISOString());
        applied.push(m);
      }).immediate();
    } catch (err) {
      throw new SidxError('SIDX_ERR_STORE', `migration ${m.file} failed: ${(err as Error).message}`, { cause: err });
    }
  }
  return applied;
}
