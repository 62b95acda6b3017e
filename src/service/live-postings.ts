/**
 * The live posting indexes of the service (posting-index.ts): the served key space's, and during a re-index the
 * target's, so that the swap serves a complete one at once. Each is built from LMDB when tracking starts (at open,
 * when a re-index begins) and follows the catalog's committed posting changes (the catalog's posting journal calls
 * `apply` after each commit, before the write returns: an acknowledged write is visible to the next retrieve). Track
 * and untrack run under the service's write lock, between transactions. A key space is untracked before a re-index
 * drops it (the swap untracks the old one, endTarget the target), so drop batches never need to reach an index.
 *
 * `source(model)` gives the candidate scans for a key space: its index, or the catalog's LMDB scans when it has
 * none (storage.postingIndex "lmdb", or an index dropped after a change it could not apply, which is logged).
 */
import type { Catalog } from '../store/catalog.ts';
import type { PostingChanges, PostingWatcher } from '../store/posting-journal.ts';
import type { SpacePostings } from '../store/catalog-scan.ts';
import type { CandidateSource } from './candidates.ts';
import { FoldThread } from './posting-fold-thread.ts';
import { PostingIndex } from './posting-index.ts';
import type { Logger } from './vector-state.ts';

/** Indexes whose main run holds this many rows fold on the fold thread (posting-fold-thread.ts), smaller ones in place. */
const THREAD_FOLD_ROWS = 1 << 18;

export class LivePostings implements PostingWatcher {
  #catalog: Catalog;
  #log: Logger;
  #enabled: boolean;
  #indexes = new Map<number, PostingIndex>();
  #minDelta: number | undefined;
  #foldThread = new FoldThread();
  #foldRows: number;

  /**
   * With `enabled` false, every source is the catalog (no index is built). One per catalog: it is the catalog's
   * only posting watcher. `minDelta`: see PostingIndex; `foldRows`: the main run's rows from which a fold runs on
   * the fold thread (tests lower both).
   */
  constructor(catalog: Catalog, log: Logger, enabled: boolean, minDelta?: number, foldRows = THREAD_FOLD_ROWS) {
    this.#catalog = catalog;
    this.#log = log;
    this.#enabled = enabled;
    this.#minDelta = minDelta;
    this.#foldRows = foldRows;
    if (enabled) catalog.spaces.watchPostings(this);
  }

  /** The candidate scans of key space `model`. */
  source(model: number): CandidateSource {
    return this.#indexes.get(model) ?? this.#catalog;
  }

  /** The index of `model`, if one is live. */
  index(model: number): PostingIndex | undefined {
    return this.#indexes.get(model);
  }

  /**
   * Builds the index of key space `model` (`levels` levels) from LMDB, unless there is one; returns the postings it
   * read (valid until the next write: the SID tries at open count them too), or undefined when it read none.
   */
  track(model: number, levels: number): SpacePostings | undefined {
    if (!this.#enabled || this.#indexes.has(model)) return undefined;
    const t0 = performance.now();
    let index;
    let scanned;
    try {
      scanned = this.#catalog.spaces.postingsOf(model, levels);
      index = new PostingIndex(model, levels, scanned, this.#catalog, this.#minDelta, {
        thread: this.#foldThread, minRows: this.#foldRows, onFailure: (err) => this.#drop(model, err),
        onThreadError: (err) => this.#log.warn(`posting index of key space ${model}: folded in place, the fold thread failed: ${err.message}`),
      });
    } catch (err) {
      this.#log.warn(`posting index of key space ${model} not built, candidates come from LMDB scans: ${(err as Error).message}`);
      return undefined;
    }
    this.#indexes.set(model, index);
    this.#log.info(`posting index of key space ${model}: ${index.count} items in ${(performance.now() - t0).toFixed(0)} ms, ${(index.bytes / 2 ** 20).toFixed(1)} MiB`);
    return scanned;
  }

  untrack(model: number): void {
    this.#indexes.get(model)?.detach();
    this.#indexes.delete(model);
  }

  wants(model: number): boolean {
    return this.#indexes.has(model);
  }

  apply(changes: PostingChanges): void {
    for (const [model, index] of this.#indexes) {
      try {
        index.apply(changes);
      } catch (err) {
        this.#drop(model, err as Error);
      }
    }
  }

  /** LMDB committed the change: answer from it from now on rather than from an index that may be wrong. */
  #drop(model: number, err: Error): void {
    this.untrack(model);
    this.#log.warn(`posting index of key space ${model} dropped, candidates come from LMDB scans: ${err.message}`);
  }

  async close(): Promise<void> {
    if (this.#enabled) this.#catalog.spaces.watchPostings(undefined);
    for (const index of this.#indexes.values()) index.detach();
    this.#indexes.clear();
    await this.#foldThread.close();
  }
}
