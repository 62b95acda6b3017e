/**
 * The catalog's write transactions. Each one's SID count changes (sid-occupancy.ts) are flushed inside it and
 * published to the in-memory tries only after it has committed, as are its posting changes to the journal's
 * watcher (posting-journal.ts); a failed one leaves all of them untouched. Values staged with `stage` (e.g. the
 * cluster log position a batch applies, stream-mark.ts) are written by the next transaction, with its changes or
 * not at all.
 *
 * `writeAsync` commits on lmdb-js's write thread: the transaction's body runs on this thread, then LMDB writes and
 * syncs the pages while the event loop goes on. Its flushed counts and postings are taken out of the shared tally
 * and journal at the end of its body, so a synchronous write that commits meanwhile (the vector checkpoint's
 * change-log cut, the only one `write` lets through then) neither drops nor publishes them.
 */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { storeError } from './catalog-meta.ts';
import type { FlushedTally, SidOccupancy } from './sid-occupancy.ts';
import type { PostingChanges, PostingJournal } from './posting-journal.ts';

type Staged = Array<{ db: Database<Buffer, Buffer>; key: Buffer; value: Buffer }>;

export class CatalogTxns {
  #env: RootDatabase<Buffer, Buffer>;
  #occupancy: SidOccupancy;
  #journal: PostingJournal;
  #lastSeq: () => bigint;
  #staged: Staged = [];
  #running: Promise<unknown> | null = null;

  constructor(env: RootDatabase<Buffer, Buffer>, occupancy: SidOccupancy, journal: PostingJournal, lastSeq: () => bigint) {
    this.#env = env;
    this.#occupancy = occupancy;
    this.#journal = journal;
    this.#lastSeq = lastSeq;
  }

  /**
   * One synchronous write transaction (committed and synced before it returns). Refused while an `exclusive` upsert
   * runs unless `besideUpsert` (a write that changes no item, SID count or posting: the change-log cut).
   */
  write<T>(what: string, fn: () => T, besideUpsert = false): T {
    if (!besideUpsert) this.assertIdle(what);
    const occupancy = this.#occupancy;
    const journal = this.#journal;
    occupancy.abort();
    journal.abort();
    let out: T;
    try {
      out = this.#env.transactionSync(() => this.#body(fn)) as T;
      occupancy.publishTaken(occupancy.take());
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

  /**
   * `write` with the commit and its sync on lmdb-js's write thread; resolves once both are done. `fn` runs on this
   * thread as a child transaction of lmdb-js's next batch: a throw aborts the child alone, so nothing of it commits.
   * Run it inside `exclusive`, which keeps other upserts and posting writes out until it settles.
   */
  writeAsync<T>(what: string, fn: () => T): Promise<T> {
    const staged = this.#staged;
    this.#staged = [];
    return this.#commitAsync(what, fn, staged);
  }

  /** Runs `run` (an upsert with an async commit) alone: `assertIdle` and `write` refuse until it settles. */
  async exclusive<T>(what: string, run: () => Promise<T>): Promise<T> {
    this.assertIdle(what);
    const running = run();
    this.#running = running.catch(() => undefined);
    try {
      return await running;
    } finally {
      this.#running = null;
    }
  }

  assertIdle(what: string): void {
    if (this.#running) throw new SidxError('SIDX_ERR_STORE', `catalog ${what}: refused while an upsert commits (catalog writes must be serialised)`);
  }

  /** Resolves once the `exclusive` run in flight, if any, has settled. */
  async settled(): Promise<void> {
    await this.#running;
  }

  async #commitAsync<T>(what: string, fn: () => T, staged: Staged): Promise<T> {
    const occupancy = this.#occupancy;
    const journal = this.#journal;
    let taken: { counts: FlushedTally; postings: PostingChanges } | undefined;
    let out: T;
    try {
      out = await this.#env.childTransaction(() => {
        occupancy.abort();
        journal.abort();
        try {
          const r = this.#body(fn, staged);
          taken = { counts: occupancy.take(), postings: journal.take() };
          return r;
        } catch (err) {
          occupancy.abort();
          journal.abort();
          throw err;
        }
      }) as T;
    } catch (err) {
      throw storeError(err, what);
    }
    occupancy.publishTaken(taken!.counts);
    journal.publishTaken(taken!.postings);
    return out;
  }

  /** A transaction's body: `fn`, the staged values, the SID counts. */
  #body<T>(fn: () => T, staged = this.#staged): T {
    const r = fn();
    for (const s of staged) s.db.put(s.key, s.value);
    this.#occupancy.flush(this.#lastSeq());
    return r;
  }

  /** `db.put(key, value)` in the next write transaction; `unstage` forgets what is staged. */
  stage(db: Database<Buffer, Buffer>, key: Buffer, value: Buffer): void {
    this.#staged.push({ db, key, value });
  }

  unstage(): void {
    this.#staged = [];
  }
}
