/**
 * A natural-only catalog (schema 5, meta `naturalPostingsOnly`) stores each SID's natural posting (rotation L-1)
 * alone: a service whose candidates come from the in-memory posting index never reads the rotated ones, and they
 * were two of every three posting writes (a third of an upsert's LMDB puts at 3 levels). Opened to serve Hamming-1
 * from LMDB (postingRotations 'all'), it gets them written from the natural ones first, here.
 */
import type { Database } from 'lmdb';
import { decodeSidKey, encodeSidPrefix, sidKeyLength, writeSidKey } from '../sid/codec.ts';
import { prefixEnd, U64_BYTES } from './keys.ts';

type Bin = Database<Buffer, Buffer>;

/** Natural postings read per write transaction of the rebuild. */
const BATCH = 50_000;

/**
 * Writes rotations 0..L-2 of every natural posting of every model (`levels`: model -> L), BATCH per transaction.
 * Idempotent (a posting written twice is one entry), so a rebuild cut short by a crash is simply run again; the caller
 * clears the flag once it returns.
 */
export function writeRotatedPostings(postings: Bin, levels: Map<number, number>, write: (fn: () => void) => void): void {
  for (const [model, L] of levels) {
    if (L < 2) continue;
    const start = encodeSidPrefix(model, L - 1, new Int32Array(0), L);
    const end = prefixEnd(start);
    const keyAt = sidKeyLength(L);
    const rotated = Buffer.allocUnsafe(keyAt + U64_BYTES);
    let from: Buffer = start;
    for (;;) {
      const batch: Buffer[] = [];
      for (const k of postings.getKeys({ start: from, end, limit: BATCH })) {
        if (batch.length === 0 && from !== start && k.equals(from)) continue; // the last key of the previous batch
        batch.push(Buffer.from(k));
      }
      if (batch.length === 0) break;
      write(() => {
        for (const k of batch) {
          const { codes } = decodeSidKey(k, L);
          k.copy(rotated, keyAt, keyAt, keyAt + U64_BYTES);
          for (let r = 0; r < L - 1; r++) {
            writeSidKey(rotated, 0, model, r, codes);
            postings.put(rotated, EMPTY);
          }
        }
      });
      from = batch[batch.length - 1]!;
    }
  }
}

const EMPTY = Buffer.alloc(0);
