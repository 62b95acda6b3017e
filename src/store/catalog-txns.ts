/**
 * The catalog's write transactions. Each one's SID count changes (sid-occupancy.ts) are flushed inside it and
 * published to the in-memory tries only after it has committed, as are its posting changes to the journal's
 * watcher (posting-journal.ts); a failed one leaves all of them untouched. Values staged with `stage` (e.g. the
 * cluster log position a batch applies, stream-mark.ts) are written by the next transaction, with its changes or
 * not at all.
 */
import type { Database, RootDatabase } from 'lmdb';
import { storeError } from './catalog-meta.ts';
import type { SidOccupancy } from './sid-occupancy.ts';
import type { PostingJournal } from './posting-journal.ts';

export class CatalogTxns {
  #env: RootDatabase<Buffer, Buffer>;
  #occupancy: SidOccupancy;
  #journal: PostingJournal;
  #lastSeq: () => bigint;
  #staged: Array<{ db: Database<Buffer, Buffer>; key: Buffer; value: Buffer }> = [];

  constructor(env: RootDatabase<Buffer, Buffer>, occupancy: SidOccupancy, journal: PostingJournal, lastSeq: () => bigint) {
    this.#env = env;
    this.#occupancy = occupancy;
    this.#journal = journal;
    this.#lastSeq = lastSeq;
  }

  /** One synchronous write transaction (committed and synced before it returns). */
  write<T>(what: string, fn: () => T): T {
    const occupancy = this.#occupancy;
    const journal = this.#journal;
    occupancy.abort();
    journal.abort();
    let out: T;
    try {
      out = this.#env.transactionSync(() => {
        const r = fn();
        for (const s of this.#staged) s.db.put(s.key, s.value);
        occupancy.flush(this.#lastSeq());
        return r;
      }) as T;
      occupancy.publish();
    } catch (err) {
      occupancy.abort();
      journal.abort();
      throw storeError(err, what);
    } finally {
      this.#staged = [];
    }
    journal.publish();
    return out;
  }

  /** `db.put(key, value)` in the next write transaction; `unstage` forgets what is staged. */
  stage(db: Database<Buffer, Buffer>, key: Buffer, value: Buffer): void {
    this.#staged.push({ db, key, value });
  }

  unstage(): void {
    this.#staged = [];
  }
}
