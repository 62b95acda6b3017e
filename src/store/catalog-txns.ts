/**
 * The catalog's write transactions. Each one's SID count changes (sid-occupancy.ts) are flushed inside it and
 * published to the in-memory tries only after it has committed; a failed one leaves both untouched.
 */
import type { RootDatabase } from 'lmdb';
import { storeError } from './catalog-meta.ts';
import type { SidOccupancy } from './sid-occupancy.ts';

export class CatalogTxns {
  #env: RootDatabase<Buffer, Buffer>;
  #occupancy: SidOccupancy;
  #lastSeq: () => bigint;

  constructor(env: RootDatabase<Buffer, Buffer>, occupancy: SidOccupancy, lastSeq: () => bigint) {
    this.#env = env;
    this.#occupancy = occupancy;
    this.#lastSeq = lastSeq;
  }

  /** One synchronous write transaction (committed and synced before it returns). */
  write<T>(what: string, fn: () => T): T {
    const occupancy = this.#occupancy;
    occupancy.abort();
    try {
      const out = this.#env.transactionSync(() => {
        const r = fn();
        occupancy.flush(this.#lastSeq());
        return r;
      }) as T;
      occupancy.publish();
      return out;
    } catch (err) {
      occupancy.abort();
      throw storeError(err, what);
    }
  }
}
