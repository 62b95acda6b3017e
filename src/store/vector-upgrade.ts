/**
 * Upgrade of a schema-3 catalog (vectors inside the item records) to schema 4 (vectors in `vectors.f32`, records
 * naming their row): batches of UPGRADE_BATCH format-0 records, each written to the file and synced, then rewritten
 * in one transaction with the rows committed (the order of catalog-vectors.ts). Interrupted, it resumes where it
 * stopped: format-1 records are skipped, and rows written by a batch that never committed are reserved again.
 */
import type { Database } from 'lmdb';
import type { CatalogVectors } from './catalog-vectors.ts';
import { readU64BE, u64Key } from './keys.ts';
import { readStoredRecord, recordLength, writeRecord, type StoredRecord } from './record.ts';

type Bin = Database<Buffer, Buffer>;

const UPGRADE_BATCH = 10_000;

/** Moves every inline vector into the vector file; returns how many moved. `write` runs one catalog transaction. */
export function upgradeToSlots(items: Bin, vectors: CatalogVectors, dim: number | undefined, write: (fn: () => void) => void): number {
  if (dim === undefined) return 0;
  let moved = 0;
  let after = -1n;
  for (;;) {
    const batch: StoredRecord[] = [];
    let scanned = 0;
    for (const { key, value } of items.getRange({ start: u64Key(after + 1n), limit: UPGRADE_BATCH })) {
      scanned++;
      after = readU64BE(key, 0);
      const rec = readStoredRecord(value, after);
      if (rec.inline) batch.push(rec);
    }
    if (batch.length > 0) {
      const reserved = vectors.reserve(batch.length);
      const flat = new Float32Array(batch.length * dim);
      batch.forEach((rec, i) => flat.set(rec.inline!, i * dim));
      vectors.persist(dim, reserved.slots, flat);
      write(() => {
        vectors.commit(reserved);
        batch.forEach((rec, i) => {
          const id = Buffer.from(rec.id, 'utf8');
          const buf = Buffer.allocUnsafe(recordLength(rec.codes.length, id.length));
          writeRecord(buf, rec.model, rec.codes, id, dim, reserved.slots[i]!);
          items.put(u64Key(rec.key), buf);
        });
      });
      moved += batch.length;
      if (moved % 100_000 < batch.length) process.stderr.write(`catalog upgrade: ${moved} vectors moved to the vector file\n`);
    }
    if (scanned < UPGRADE_BATCH) {
      if (moved > 0) process.stderr.write(`catalog upgrade: schema 3 -> 4, ${moved} vectors moved out of the records into the vector file\n`);
      return moved;
    }
  }
}
