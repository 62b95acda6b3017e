/**
 * The read side of the SID occupancy (`Catalog.sids`, sid-occupancy.ts): each answer comes with the catalog seq it
 * reflects. That is the last committed seq, or, while an upsert committed on lmdb-js's write thread is not yet
 * published to the tries (catalog-txns.ts), the seq before it: a client that syncs SIDs from that seq on misses nothing.
 */
import type { SidTrie } from '../sid/sid-trie.ts';
import type { SidDelta, SidOccupancy, SortedSids } from './sid-occupancy.ts';

type Read = <T>(what: string, fn: () => T) => T;

export class SidOccupancyReads {
  #occ: SidOccupancy;
  #lastSeq: () => bigint;
  #read: Read;

  constructor(occupancy: SidOccupancy, lastSeq: () => bigint, read: Read) {
    this.#occ = occupancy;
    this.#lastSeq = lastSeq;
    this.#read = read;
  }

  /**
   * Builds the tries now, if the catalog was opened with `deferSids` and no read built them yet; a model in `scanned`
   * from those postings, read already (no write since), instead of a scan of its own.
   */
  load(scanned?: ReadonlyMap<number, SortedSids>): void {
    this.#read('sids.load', () => this.#occ.ensureTries(scanned));
  }

  /** `model`'s trie (undefined: no SIDs yet) and the seq; the trie changes with the next write, so use it at once. */
  trie(model: number): { trie: SidTrie | undefined; seq: bigint } {
    return this.#read('sids.trie', () => ({ trie: this.#occ.trie(model), seq: this.seq() }));
  }

  /** The seq the tries reflect (a commit still being published on lmdb-js's write thread is not in them yet). */
  seq(): bigint {
    return this.#read('sids.seq', () => this.#occ.seqOf(this.#lastSeq()));
  }

  /** SIDs of `model` (L levels) occupied or emptied after `since`, and the seq; delta undefined if not covered. */
  delta(model: number, levels: number, since: bigint): { delta: SidDelta | undefined; seq: bigint } {
    return this.#read('sids.delta', () => {
      const seq = this.seq();
      return { delta: this.#occ.delta(model, levels, since, seq), seq };
    });
  }
}
