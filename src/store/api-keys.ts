/**
 * API keys in the control plane (`api_keys`, migrations/0002_api_keys.sql). A key reads
 * `sidx_<id>_<secret>`: 12 hex digits of public id, then 32 random bytes in base64url. Only the SHA-256 of the
 * whole key is stored. `verify` finds the row by id and compares hashes with `timingSafeEqual`; an unknown id
 * is compared against a dummy hash, so the time taken does not tell a wrong id from a wrong secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { SidxError } from '../errors.ts';

export type KeyScope = 'read' | 'write' | 'admin';
export const KEY_SCOPES: readonly KeyScope[] = ['read', 'write', 'admin'];

export interface ApiKeyRow {
  id: string;
  name: string;
  scope: KeyScope;
  createdAt: string;
  revokedAt: string | null;
}

export interface CreatedKey extends ApiKeyRow {
  /** The key itself: shown once, never stored. */
  key: string;
}

export type KeyCheck = { ok: true; id: string; scope: KeyScope } | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' };

interface KeyDbRow {
  id: string;
  name: string;
  scope: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

const KEY_RE = /^sidx_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const DUMMY_HASH = createHash('sha256').update('sidx-no-such-key').digest();

/** The random part of a key (base64url, so it may itself contain `_`), or undefined for a malformed key. */
export function keySecret(key: string): string | undefined {
  return KEY_RE.exec(key)?.[2];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function toRow(r: KeyDbRow): ApiKeyRow {
  return { id: r.id, name: r.name, scope: r.scope as KeyScope, createdAt: r.created_at, revokedAt: r.revoked_at };
}

export class ApiKeyStore {
  #db: Database.Database;
  #byIdStmt: Database.Statement<[string], KeyDbRow> | undefined;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Prepared on first use (a control plane opened with an older migrations directory has no api_keys table). */
  get #byId(): Database.Statement<[string], KeyDbRow> {
    this.#byIdStmt ??= this.#db.prepare<[string], KeyDbRow>('SELECT * FROM api_keys WHERE id = ?');
    return this.#byIdStmt;
  }

  create(name: string, scope: KeyScope): CreatedKey {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'key name must be 1-200 characters', { field: 'name' });
    }
    if (!KEY_SCOPES.includes(scope)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `scope must be one of ${KEY_SCOPES.join(', ')}`, { field: 'scope' });
    }
    const id = randomBytes(6).toString('hex');
    const key = `sidx_${id}_${randomBytes(32).toString('base64url')}`;
    const createdAt = new Date().toISOString();
    try {
      this.#db.prepare('INSERT INTO api_keys (id, name, scope, hash, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(id, name, scope, sha256(key).toString('hex'), createdAt);
    } catch (err) {
      throw new SidxError('SIDX_ERR_STORE', `api key creation failed: ${(err as Error).message}`, { cause: err });
    }
    return { id, name, scope, createdAt, revokedAt: null, key };
  }

  list(): ApiKeyRow[] {
    return (this.#db.prepare('SELECT * FROM api_keys ORDER BY created_at, rowid').all() as KeyDbRow[]).map(toRow);
  }

  /** Revokes a key by id (or by the whole key); false when there is no such key. Revoking twice is fine. */
  revoke(idOrKey: string): boolean {
    const id = KEY_RE.exec(idOrKey)?.[1] ?? idOrKey;
    const res = this.#db.prepare('UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?')
      .run(new Date().toISOString(), id);
    return res.changes > 0;
  }

  verify(key: string): KeyCheck {
    const m = KEY_RE.exec(key);
    if (!m) return { ok: false, reason: 'malformed' };
    const row = this.#byId.get(m[1]!);
    const given = sha256(key);
    const stored = row ? Buffer.from(row.hash, 'hex') : DUMMY_HASH;
    const equal = stored.length === given.length && timingSafeEqual(stored, given);
    if (!row || !equal) return { ok: false, reason: 'unknown' };
    if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
    return { ok: true, id: row.id, scope: row.scope as KeyScope };
  }
}
