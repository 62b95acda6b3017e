/**
 * Brings a catalog written by older code to CATALOG_SCHEMA_VERSION at open; a newer schema is refused.
 *   1 -> 2: `sids` entries (none to write); 2 -> 3: the SID counts and log;
 *   3 -> 4: vectors out of the records into the vector file (vector-upgrade.ts, resumable);
 *   4 -> 5: the natural-only flag (absent: all rotations); 5 -> 6: one change per change-log entry (only the number);
 *   6 -> 7: the SID counts (`sidCounts`) dropped (the tries count the postings at open) and the SID log restarted in its
 *   new form (sid-log.ts): a delta needs since >= the seq of the upgrade.
 * Older code refuses the numbers it does not know, so a catalog is never opened by code that misreads it.
 */
import type { Database } from 'lmdb';
import { SidxError } from '../errors.ts';
import { CATALOG_SCHEMA_VERSION, META_LAST_SEQ, META_SCHEMA, readMetaU64, u32Value } from './catalog-meta.ts';
import type { CatalogVectors } from './catalog-vectors.ts';
import type { SidOccupancy } from './sid-occupancy.ts';
import { upgradeToSlots } from './vector-upgrade.ts';

type Bin = Database<Buffer, Buffer>;

export interface UpgradeTarget {
  meta: Bin;
  items: Bin;
  vectors: CatalogVectors;
  occupancy: SidOccupancy;
  /** The stored vector dimension (undefined: no vector yet). */
  dim: number | undefined;
  /** One synchronous catalog write transaction. */
  write(what: string, fn: () => void): void;
  /** Drops the `sidCounts` database (dropStoredCounts). */
  dropStoredCounts(): void;
}

export function upgradeSchema(version: number, c: UpgradeTarget): void {
  if (version === CATALOG_SCHEMA_VERSION) return;
  if (version < 1 || version > CATALOG_SCHEMA_VERSION) {
    throw new SidxError('SIDX_ERR_STORE', `catalog schema ${version} is not supported (expected ${CATALOG_SCHEMA_VERSION})`);
  }
  if (version <= 3) upgradeToSlots(c.items, c.vectors, c.dim, (fn) => c.write('upgrade', fn));
  if (version <= 6) {
    c.write('upgrade', () => c.occupancy.restartLog(readMetaU64(c.meta, META_LAST_SEQ)));
    c.dropStoredCounts();
  }
  c.write('upgrade', () => c.meta.put(META_SCHEMA, u32Value(CATALOG_SCHEMA_VERSION)));
}
