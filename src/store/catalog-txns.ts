/**
 * The catalog's write transactions. Each one's SID count changes (sid-occupancy.ts) are flushed inside it and
 * published to the in-memory tries only after it has committed, as are its posting changes to the journal's
 * watcher (posting-journal.ts); a failed one leaves all of them untouched. Values staged with `stage` (e.g. the
 * cluster log position a batch applies, stream-mark.ts) are written by the next transaction, with its changes or
 * not at all.
 *
 * Upserts through `pipeline` commit on lmdb-js's write thread: the transaction's body runs on this thread, then LMDB
 * writes and syncs the pages while the event loop goes on, and the next upsert may prepare (its vectors written and
 * synced, catalog-vectors.ts) and queue its body meanwhile. Each body's flushed counts and postings are taken out of
 * the shared tally and journal at its end and published once its commit is in, in commit order. Until every such
 * commit is in, the only synchronous write `write` lets through is the vector checkpoint's change-log cut.
 */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { InFlight } from '../in-flight.ts';
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
  /** Set while a pipelined upsert's body has not run yet (one at a time): called when it has run. */
  #bodyRan: (() => void) | null = null;
  /** Every pipelined upsert not yet settled. */
  #inFlight = new InFlight();

  constructor(env: RootDatabase<Buffer, Buffer>, occupancy: SidOccupancy, journal: PostingJournal, lastSeq: () => bigint) {
    this.#env = env;
    this.#occupancy = occupancy;
    this.#journal = journal;
    this.#lastSeq = lastSeq;
  }

  /**
   * One synchronous write transaction (committed and synced before it returns). Refused while a pipelined upsert is
   * in flight unless `besideUpsert` (a write that changes no item, SID count or posting: the change-log cut).
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
      occupancy.publishTaken(occupancy.take(0n));
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
   * Runs `run`, an upsert that ends in one `writeAsync`, until that body has run (its place among the commits is
   * fixed), and resolves with its outcome: the next upsert may be pipelined from then on. Refused while another is
   * still before its body.
   */
  async pipeline<T>(what: string, run: () => Promise<T>): Promise<{ committed: Promise<T> }> {
    if (this.#bodyRan) throw refused(what);
    const bodyRan = new Promise<void>((resolve) => (this.#bodyRan = resolve));
    const committed = run();
    const settled = this.#inFlight.track(committed);
    try {
      await Promise.race([bodyRan, settled]);
    } finally {
      this.#bodyRan = null;
    }
    return { committed };
  }

  /**
   * `write` with the commit and its sync on lmdb-js's write thread; resolves once both are done and published. `fn`
   * runs on this thread as a child transaction of lmdb-js's next batch: a throw aborts the child alone.
   */
  async writeAsync<T>(what: string, fn: () => T): Promise<T> {
    const occupancy = this.#occupancy;
    const journal = this.#journal;
    const staged = this.#staged;
    const bodyRan = this.#bodyRan;
    this.#staged = [];
    let taken: { counts: FlushedTally; postings: PostingChanges } | undefined;
    let out: T;
    try {
      out = await this.#env.childTransaction(() => {
        occupancy.abort();
        journal.abort();
        const before = this.#lastSeq();
        try {
          const r = this.#body(fn, staged);
          taken = { counts: occupancy.take(before, true), postings: journal.take() };
          return r;
        } catch (err) {
          occupancy.abort();
          journal.abort();
          throw err;
        } finally {
          bodyRan?.();
        }
      }) as T;
    } catch (err) {
      if (taken) occupancy.release(taken.counts);
      throw storeError(err, what);
    }
    occupancy.publishTaken(taken!.counts);
    journal.publishTaken(taken!.postings);
    return out;
  }

  /** Refuses (SIDX_ERR_STORE) while a pipelined upsert is in flight. */
  assertIdle(what: string): void {
    if (this.#inFlight.size > 0) throw refused(what);
  }

  /** Resolves once every pipelined upsert begun so far has settled. */
  settled(): Promise<void> {
    return this.#inFlight.all();
  }

  /** A transaction's body: `fn`, the staged values, the SID tally (its log entry). */
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

function refused(what: string): SidxError {
  return new SidxError('SIDX_ERR_STORE', `catalog ${what}: refused while an upsert commits (catalog writes must be serialised)`);
}
