/**
 * The posting changes of one write transaction, handed to a watcher after the transaction commits: how an
 * in-memory copy of a key space's postings (service/posting-index.ts) follows the catalog. Every posting write goes
 * through `writePostings` (catalog-spaces.ts), which records here the changes of the key spaces the watcher
 * `wants`; CatalogTxns clears the journal before a transaction, publishes it after the commit, and drops it when the
 * transaction fails, so a watcher never sees a change LMDB does not hold.
 */
import { readU64BE } from './keys.ts';

/** The changes of one committed transaction, in the order they were written. */
export interface PostingChanges {
  readonly length: number;
  model(i: number): number;
  key(i: number): bigint;
  /** The change's SID (owned by the batch). */
  codes(i: number): Int32Array;
  removed(i: number): boolean;
}

export interface PostingWatcher {
  /** Whether changes to key space `model` are recorded (asked at each posting write). */
  wants(model: number): boolean;
  /** Called after the commit, before the write call returns; must not throw. */
  apply(changes: PostingChanges): void;
}

class Batch implements PostingChanges {
  models: number[] = [];
  keys: bigint[] = [];
  sids: Int32Array[] = [];
  removes: boolean[] = [];

  get length(): number {
    return this.models.length;
  }

  model(i: number): number {
    return this.models[i]!;
  }

  key(i: number): bigint {
    return this.keys[i]!;
  }

  codes(i: number): Int32Array {
    return this.sids[i]!;
  }

  removed(i: number): boolean {
    return this.removes[i]!;
  }
}

export class PostingJournal {
  #watcher: PostingWatcher | undefined;
  #batch = new Batch();

  /** Replaces the watcher (undefined: none; nothing is recorded). */
  watch(watcher: PostingWatcher | undefined): void {
    this.#watcher = watcher;
  }

  /** One posting write (`key`: the internal key's 8 big-endian bytes), inside the transaction. */
  record(model: number, codes: Int32Array, key: Uint8Array, remove: boolean): void {
    if (!this.#watcher?.wants(model)) return;
    const b = this.#batch;
    b.models.push(model);
    b.keys.push(readU64BE(key, 0));
    b.sids.push(codes.slice());
    b.removes.push(remove);
  }

  /** Forgets what the current transaction recorded (before it starts, or after it failed). */
  abort(): void {
    if (this.#batch.length > 0) this.#batch = new Batch();
  }

  /** After the commit: the watcher gets the transaction's changes. */
  publish(): void {
    this.publishTaken(this.take());
  }

  /** Takes the transaction's changes out, for a commit that completes later (`publishTaken` after it). */
  take(): PostingChanges {
    const batch = this.#batch;
    if (batch.length > 0) this.#batch = new Batch();
    return batch;
  }

  publishTaken(changes: PostingChanges): void {
    if (changes.length > 0) this.#watcher?.apply(changes);
  }
}
