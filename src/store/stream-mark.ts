/**
 * How far the catalog has applied a replicated write log (cluster mode: the JetStream sequence of a shard's
 * subject, src/cluster/shard.ts), kept in `meta` and written in the same LMDB transaction as the changes it
 * applied: after a crash the catalog and its mark agree, so replaying the log from mark + 1 changes nothing twice.
 */
import type { Database } from 'lmdb';
import { readMetaU64 } from './catalog-meta.ts';
import type { CatalogTxns } from './catalog-txns.ts';
import { u64Key } from './keys.ts';

const META_STREAM_SEQ = Buffer.from('streamSeq');

export class StreamMark {
  #meta: Database<Buffer, Buffer>;
  #txns: CatalogTxns;
  #read: <T>(what: string, fn: () => T) => T;

  constructor(meta: Database<Buffer, Buffer>, txns: CatalogTxns, read: <T>(what: string, fn: () => T) => T) {
    this.#meta = meta;
    this.#txns = txns;
    this.#read = read;
  }

  /** The log position of the last change applied (0 when none). */
  get applied(): bigint {
    return this.#read('streamSeq', () => readMetaU64(this.#meta, META_STREAM_SEQ));
  }

  /** Runs `write` (one write transaction: an upsert or delete batch) marking `seq` applied in it, when given. */
  within<T>(seq: bigint | undefined, write: () => T): T {
    if (seq === undefined) return write();
    this.#txns.stage(this.#meta, META_STREAM_SEQ, u64Key(seq));
    try {
      return write();
    } finally {
      this.#txns.unstage();
    }
  }

  /** Marks `seq` applied in a transaction of its own (a log entry that changes nothing, e.g. refused input). */
  record(seq: bigint): void {
    this.within(seq, () => this.#txns.write('streamSeq', () => undefined));
  }
}
