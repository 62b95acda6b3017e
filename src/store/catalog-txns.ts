/**
 * The catalog's write transactions. Each one's SID count changes (sid-occupancy.ts) are flushed inside it and
 * published to the in-memory tries only after it has committed, as are its posting changes to the journal's
 * watcher (posting-journal.ts); a failed one leaves all of them untouched.
 */
import type { RootDatabase } from 'lmdb';
import { storeError } from './catalog-meta.ts';
import type { SidOccupancy } from './sid-occupancy.ts';
import type { PostingJournal } from './posting-journal.ts';

export class CatalogTxns {
  #env: RootDatabase<Buffer, Buffer>;
  #occupancy: SidOccupancy;
  #journal: PostingJournal;
  #lastSeq: () => bigint;

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
        occupancy.flush(this.#lastSeq());
        return r;
      }) as T;
      occupancy.publish();
    } catch (err) {
      occupancy.abort();
      journal.abort();
      throw storeError(err, what);
    }
    journal.publish();
    return out;
  }

  /**
   * A write transaction whose commit and fsync run on lmdb-js's write thread (`fn` runs on this one): synchronous
   * writes may run before it commits, so its count changes are detached from the shared tally and published when
   * it resolves.
   */
  writeOffThread<T>(what: string, fn: () => T): Promise<T> {
    const occupancy = this.#occupancy;
    const journal = this.#journal;
    let publish = (): void => {};
    let publishPostings = (): void => {};
    return this.#env.transaction(() => {
      occupancy.abort();
      journal.abort();
      const r = fn();
      occupancy.flush(this.#lastSeq());
      publish = occupancy.detach();
      publishPostings = journal.detach();
      return r;
    }).then((r) => (publish(), publishPostings(), r as T), (err: unknown) => {
      throw storeError(err, what);
    });
  }
}
