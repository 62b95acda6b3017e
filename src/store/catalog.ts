/**
 * LMDB catalog: the source of truth for items. One environment, eight named databases, binary keys and values
 * only (lmdb-js's default msgpack encoding silently corrupts typed arrays):
 *
 *   ids       external id (UTF-8)                          -> internal key (u64 BE)
 *   items     internal key (u64 BE)                        -> record (layout in record.ts): id, SID, the slot of its vector
 *   postings  SID key (codec.ts) in rotation r ++ key (u64) -> empty, for every rotation r in 0..L-1;
 *             rotation L-1 (natural order) serves exact-SID and SID-prefix scans, the others Hamming-1 scans.
 *             A natural-only catalog (meta naturalPostingsOnly, postingRotations 'natural') holds rotation L-1
 *             alone; its Hamming-1 scans skip-scan the natural order (posting-layout.ts). Schema 5 added the flag;
 *             a schema-4 catalog (all rotations) only gets the new number at open.
 *   changes   first seq of a transaction (u64 BE)          -> its changes: n x (op u8 ++ internal key u64 BE) (change-log.ts)
 *   meta      ascii name                                   -> value (see META_* below)
 *   sids      internal key ++ model (u16 BE)                -> codes: an item's SID in a second model (re-index;
 *             catalog-spaces.ts). Schema 2 added it; a schema-1 catalog is upgraded in place at open.
 *   sidLog    seq ++ model -> each write transaction's item-count changes per SID (sid-log.ts), for SID trie deltas;
 *             the items per SID are counted from the postings at open (sid-occupancy.ts). Schema 3 added a log with
 *             `sidCounts`, the counts; schema 7 dropped the counts and gave the log this form.
 *   freeSlots, meta nextSlot: which rows of `vectors.f32` no record names (catalog-vectors.ts). Schema 4 moved
 *             the vectors out of the records into that file (each vector stored once); older catalogs are upgraded
 *             at open, 10,000 records per transaction, resumable.
 *
 * Internal keys come from a counter in meta, are never reused, and stay with an external id across re-upserts:
 * they are FAISS's int64 labels. Every seq is one item change, with its change-log entry, except a re-index batch
 * (spaces.putSids) and a change of the served model (spaces.setActiveModel), which take one seq each and log no
 * change; a batch returns the seq of its last change.
 *
 * Durability: every write is one transaction with lmdb-js's default flags (no MDB_NOSYNC), so LMDB writes and
 * fdatasyncs the data pages, then the meta page, inside mdb_txn_commit, before the call returns or its promise resolves
 * (strace: one fdatasync per batch; upsertBatchPipelined commits on lmdb-js's write thread). A batch that returned
 * survives kill -9 of the process and a machine crash (the env's flags: catalog-meta.ts). An upsert batch first
 * writes its vectors to rows no committed record names and fdatasyncs `vectors.f32` (possibly while it is encoded:
 * `stageBatch`), then commits (catalog-vectors.ts): a committed record never names a row that is not on disk. Cost:
 * two fsyncs per batch, so callers should batch writes. A re-index drop batch (KeySpaces.dropAfterOffThread) runs
 * whole, with the same sync, on a thread of its own (space-drop-thread.ts).
 * Reads are synchronous and see the latest committed state. Records returned own their arrays (record.ts).
 * Iterables (changesSince, items) read one snapshot lazily; finish or break out of them to release it.
 */
import type { Database, RootDatabase } from 'lmdb';
import { SidxError } from '../errors.ts';
import { assertLimit, idBytesOf, type UpsertInput } from './catalog-input.ts';
import { PostingScans, type Neighbour } from './catalog-scan.ts';
import { changesAfter, truncateChangesTxn, type Change } from './change-log.ts';
import { CatalogTxns } from './catalog-txns.ts';
import { PostingJournal } from './posting-journal.ts';
import { initMeta, META_DIM, META_LAST_SEQ, META_NATURAL_ONLY, META_SCHEMA, metaLevels, modelLevels, openCatalogDbs, openCatalogEnv, readMetaU32, readMetaU64, storeError, type CatalogOpenOptions, type PostingLayout } from './catalog-meta.ts';
import { writeRotatedPostings } from './posting-layout.ts';
import { assertInternalKey, HOST_IS_LITTLE_ENDIAN, keyScratch, readU64BE, u64Key } from './keys.ts';
import { readStoredRecord, type ItemRecord, type StoredRecord } from './record.ts';
import { CatalogVectors } from './catalog-vectors.ts';
import { deleteItems, stageBatch, upsertItems, upsertItemsAsync, type StagedBatch, type UpsertResult, type WriteDbs } from './catalog-writes.ts';
import { upgradeSchema } from './schema-upgrade.ts';
import { KeySpaces } from './catalog-spaces.ts';
import { SpaceDropThread } from './space-drop-thread.ts';
import { StreamMark } from './stream-mark.ts';
import { DEFAULT_SID_HISTORY, dropStoredCounts, SidOccupancy } from './sid-occupancy.ts';
import { SidOccupancyReads } from './sid-occupancy-reads.ts';

export type { ItemRecord, StoredRecord } from './record.ts';
export type { UpsertInput } from './catalog-input.ts';
export type { StagedBatch, UpsertResult } from './catalog-writes.ts';
export type { Neighbour } from './catalog-scan.ts';
export type { Change } from './change-log.ts';
export type { DropBatch, DropResult, KeySpaces } from './catalog-spaces.ts';
export type { SidTrie } from '../sid/sid-trie.ts';
export { MAX_ID_BYTES } from './catalog-input.ts';
export { CATALOG_SCHEMA_VERSION } from './catalog-meta.ts';
export { DEFAULT_SID_HISTORY } from './sid-occupancy.ts';
export type { CatalogOpenOptions } from './catalog-meta.ts';

type Bin = Database<Buffer, Buffer>;

export class Catalog {
  #env: RootDatabase<Buffer, Buffer>;
  #ids: Bin;
  #items: Bin;
  #postings: Bin;
  #scans: PostingScans;
  #changes: Bin;
  #meta: Bin;
  #occupancy: SidOccupancy;
  #txns: CatalogTxns;
  #vectors: CatalogVectors;
  #writeDbs: WriteDbs;
  #dropThread: SpaceDropThread;
  #layout: PostingLayout;
  /** Which SIDs are occupied, per model (sid-occupancy.ts): the tries behind /v1/sids/*. */
  readonly sids: SidOccupancyReads;
  /** SID key spaces: the re-index side of the catalog (catalog-spaces.ts). */
  readonly spaces: KeySpaces;
  /** The cluster write log's position applied (stream-mark.ts). */
  readonly stream: StreamMark;
  #closed = false;
  readonly #recordKey = keyScratch(); // recordOf's key, rewritten by each call
  // Both are immutable once written, so caching them is safe even with other writers.
  #dim: number | undefined;
  #levels = new Map<number, number>();

  private constructor(env: RootDatabase<Buffer, Buffer>, sidHistory: number, dir: string, mapSizeBytes?: number) {
    this.#env = env;
    const dbs = openCatalogDbs(env);
    ({ ids: this.#ids, items: this.#items, postings: this.#postings, changes: this.#changes, meta: this.#meta } = dbs);
    this.#layout = dbs.layout;
    this.#scans = new PostingScans(this.#postings, (model) => this.#storedLevels(model), dbs.layout);
    this.#vectors = new CatalogVectors(dir, dbs.freeSlots, dbs.meta);
    this.#occupancy = new SidOccupancy(env, dbs.meta, sidHistory);
    this.sids = new SidOccupancyReads(this.#occupancy, () => this.#metaU64(META_LAST_SEQ), (what, fn) => this.#read(what, fn));
    const journal = new PostingJournal();
    this.#txns = new CatalogTxns(env, this.#occupancy, journal, () => this.#metaU64(META_LAST_SEQ));
    this.stream = new StreamMark(dbs.meta, this.#txns, (what, fn) => this.#read(what, fn));
    this.#dropThread = new SpaceDropThread(dir, mapSizeBytes);
    // Drop batches are not journaled: a key space is untracked by the posting index before a re-index drops it.
    const dropOffThread = this.#dropThread.runner(() => this.#assertOpen(), (changes) => this.#occupancy.publishChanges(changes));
    this.spaces = new KeySpaces({ ...dbs, tally: this.#occupancy.tally, journal }, (what, fn) => this.#write(what, fn), (what, fn) => this.#read(what, fn), dropOffThread);
    this.#writeDbs = {
      ids: this.#ids, items: this.#items, changes: this.#changes, meta: this.#meta, spaces: this.spaces.dbs, vectors: this.#vectors,
      write: (what, fn) => this.#write(what, fn), storedDim: () => this.#storedDim(),
      writeAsync: (what, fn) => this.#txns.writeAsync(what, fn),
    };
  }

  static open(dir: string, opts: CatalogOpenOptions = {}): Catalog {
    if (!HOST_IS_LITTLE_ENDIAN) throw new SidxError('SIDX_ERR_STORE', 'the catalog record layout needs a little-endian host');
    const firstKey = opts.firstKey ?? 1n;
    assertInternalKey(firstKey, 'firstKey');
    let catalog: Catalog;
    try {
      catalog = new Catalog(openCatalogEnv(dir, opts.mapSizeBytes), opts.sidHistory ?? DEFAULT_SID_HISTORY, dir, opts.mapSizeBytes);
    } catch (err) {
      throw storeError(err, `open of ${dir}`);
    }
    try {
      catalog.#init(firstKey, !opts.deferSids, opts.postingRotations ?? 'all');
    } catch (err) {
      void catalog.close();
      throw storeError(err, `open of ${dir}`);
    }
    return catalog;
  }

  #init(firstKey: bigint, loadSids: boolean, rotations: 'all' | 'natural'): void {
    const schema = this.#meta.getBinary(META_SCHEMA);
    if (schema !== undefined) {
      upgradeSchema(schema.readUInt32BE(0), {
        meta: this.#meta, items: this.#items, vectors: this.#vectors, occupancy: this.#occupancy,
        dim: this.#storedDim(), write: (what, fn) => this.#write(what, fn), dropStoredCounts: () => dropStoredCounts(this.#env),
      });
      this.spaces.loadActive();
      if (rotations === 'all' && this.#layout.naturalOnly) {
        writeRotatedPostings(this.#postings, modelLevels(this.#meta), (fn) => this.#write('rotations', fn));
        this.#write('rotations', () => this.#meta.remove(META_NATURAL_ONLY));
      }
    } else {
      this.#write('init', () => initMeta(this.#meta, firstKey, rotations === 'natural'));
    }
    this.#layout.naturalOnly = readMetaU32(this.#meta, META_NATURAL_ONLY) === 1;
    this.#occupancy.open(!loadSids);
  }

  #write<T>(what: string, fn: () => T): T {
    this.#assertOpen();
    return this.#txns.write(what, fn);
  }

  #assertOpen(): void {
    if (this.#closed) throw new SidxError('SIDX_ERR_STORE', 'catalog is closed');
  }

  #read<T>(what: string, fn: () => T): T {
    this.#assertOpen();
    try {
      return fn();
    } catch (err) {
      throw storeError(err, what);
    }
  }

  #metaU64(name: Buffer): bigint {
    return readMetaU64(this.#meta, name);
  }

  #storedDim(): number | undefined {
    if (this.#dim === undefined) this.#dim = readMetaU32(this.#meta, META_DIM);
    return this.#dim;
  }

  #storedLevels(model: number): number | undefined {
    let levels = this.#levels.get(model);
    if (levels === undefined) {
      levels = this.#meta.getBinary(metaLevels(model))?.[0];
      if (levels !== undefined) this.#levels.set(model, levels);
    }
    return levels;
  }

  /**
   * Inserts or replaces items under SID model version `model`, in one write transaction: records, id mappings,
   * postings (a replaced item's old postings removed) and one change-log entry per item. Everything is validated
   * before the first write, so a rejected batch writes nothing. A replaced item loses its SIDs in other models;
   * with `alt` (during a re-index), item i also gets SID `alt.codes[i]` in model `alt.model`.
   */
  upsertBatch(model: number, items: UpsertInput[], alt?: { model: number; codes: Int32Array[] }): UpsertResult {
    this.#assertOpen();
    this.#txns.assertIdle('upsert');
    return upsertItems(this.#writeDbs, model, items, alt);
  }

  /**
   * `upsertBatch` with the vector file's writes off the event loop (`staged` ahead, else here) and the commit on
   * lmdb-js's write thread, pipelined (catalog-txns.ts): resolves once the batch's body has run, with its commit's
   * promise; the next batch may be pipelined then, other writes once every commit is in. `logSeq`: the cluster log
   * position, for this commit alone.
   */
  upsertBatchPipelined(model: number, items: UpsertInput[], alt?: { model: number; codes: Int32Array[] }, logSeq?: bigint, staged?: StagedBatch):
    Promise<{ committed: Promise<UpsertResult> }> {
    this.#assertOpen();
    return this.#txns.pipeline('upsert', () => upsertItemsAsync(this.#writeDbs, model, items, alt, (commit) => this.stream.within(logSeq, commit), staged));
  }

  /** A batch checked without its SIDs, vectors written ahead of `upsertBatchPipelined` (`staged`; `finiteChecked`: catalog-writes.ts). */
  stageBatch(items: ReadonlyArray<Pick<UpsertInput, 'id' | 'vector'>>, modelDim?: number, finiteChecked = false): StagedBatch {
    this.#assertOpen();
    return stageBatch(this.#writeDbs, items, modelDim, finiteChecked);
  }

  /** Removes items (record, id mapping, every posting) in one write transaction; unknown ids are reported. */
  deleteBatch(ids: string[]): { seq: bigint; removed: BigInt64Array; missing: string[] } {
    this.#assertOpen();
    return deleteItems(this.#writeDbs, ids);
  }

  get(id: string): ItemRecord | undefined {
    return this.#read('get', () => {
      const keyBuf = this.#ids.getBinary(idBytesOf(id, 'id'));
      return keyBuf === undefined ? undefined : this.#readItem(keyBuf);
    });
  }

  getByKey(key: bigint): ItemRecord | undefined {
    return this.#read('getByKey', () => {
      assertInternalKey(key);
      return this.#readItem(u64Key(key));
    });
  }

  /** The record without its vector (id, SID of the active key space, slot): what retrieve reads, k per answer. */
  recordOf(key: bigint): StoredRecord | undefined {
    this.#assertOpen();
    assertInternalKey(key);
    this.#recordKey.view.setBigUint64(0, key); // no closure nor key buffer per call (lmdb-js copies the key)
    try {
      return this.#stored(this.#recordKey.bytes, key);
    } catch (err) {
      throw storeError(err, 'recordOf');
    }
  }

  /** The vectors in rows `slots` of the vector file (slots.length x dim). */
  readVectors(slots: ArrayLike<number>): Float32Array {
    const dim = this.#storedDim();
    if (dim === undefined) return new Float32Array(0);
    return this.#read('readVectors', () => this.#vectors.read(dim, slots));
  }

  /** Path of the vector file (the rerank maps it). */
  get vectorFile(): string {
    return this.#vectors.path;
  }

  #stored(keyBuf: Buffer, key = readU64BE(keyBuf, 0)): StoredRecord | undefined {
    // getBinaryFast's buffer is valid only until the next read; readStoredRecord copies everything out of it.
    const value = this.#items.getBinaryFast(keyBuf);
    return value === undefined ? undefined : this.spaces.resolve(readStoredRecord(value, key), keyBuf);
  }

  #readItem(keyBuf: Buffer): ItemRecord | undefined {
    const rec = this.#stored(keyBuf);
    return rec && this.#withVectors([rec])[0];
  }

  /** The records with their vectors, read in one pass over the vector file. */
  #withVectors(recs: StoredRecord[]): ItemRecord[] {
    if (recs.length === 0) return [];
    const dim = recs[0]!.dim;
    const flat = this.#vectors.read(dim, Uint32Array.from(recs, (r) => r.slot));
    return recs.map((r, i) => ({ id: r.id, key: r.key, model: r.model, codes: r.codes, vector: flat.slice(i * dim, (i + 1) * dim) }));
  }

  /** Internal keys of the items whose SID is exactly `codes` (ascending, at most `limit`). */
  exact(model: number, codes: Int32Array, limit: number): BigInt64Array {
    return this.#read('exact', () => this.#scans.exact(model, codes, limit));
  }

  /** Internal keys of the items under a SID prefix of 0..L codes, in SID order then key order. */
  prefix(model: number, codesPrefix: Int32Array, limit: number): BigInt64Array {
    return this.#read('prefix', () => this.#scans.prefix(model, codesPrefix, limit));
  }

  /** Items whose SID differs from `codes` at exactly one level (order: catalog-scan.ts scanHamming1). */
  hamming1(model: number, codes: Int32Array, limit: number): Neighbour[] {
    return this.#read('hamming1', () => this.#scans.hamming1(model, codes, limit));
  }

  /** Change-log entries with seq > `seq`, ascending. Throws if entries after `seq` were already truncated. */
  changesSince(seq: bigint): Iterable<Change> {
    this.#assertOpen();
    return changesAfter(this.#changes, this.#meta, seq);
  }

  /** Removes change-log entries with seq <= uptoSeq (once the vector slot file is durable up to it). */
  truncateChanges(uptoSeq: bigint): void {
    this.#assertOpen();
    if (typeof uptoSeq !== 'bigint' || uptoSeq < 0n) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'uptoSeq must be a non-negative bigint', { field: 'uptoSeq' });
    }
    this.#txns.write('truncateChanges', () => truncateChangesTxn(this.#changes, this.#meta, uptoSeq), true);
  }

  /** Every item with its vector, in internal-key order; each record owns its arrays. */
  items(): Iterable<ItemRecord> {
    this.#assertOpen();
    return this.#iterateItems();
  }

  /** Every record without its vector (slots only), in internal-key order. */
  records(): Iterable<StoredRecord> {
    this.#assertOpen();
    return this.#iterateRecords();
  }

  /** Up to `limit` items with keys above `after`, with their vectors (the re-index encode phase). */
  itemsAfter(after: bigint, limit: number): ItemRecord[] {
    return this.#read('itemsAfter', () => {
      assertLimit(limit);
      const recs: StoredRecord[] = [];
      for (const { key, value } of this.#items.getRange({ start: u64Key(after + 1n), limit })) recs.push(readStoredRecord(value, readU64BE(key, 0)));
      return this.#withVectors(recs);
    });
  }

  *#iterateRecords(): Generator<StoredRecord> {
    for (const { key, value } of this.#items.getRange({})) yield readStoredRecord(value, readU64BE(key, 0));
  }

  *#iterateItems(): Generator<ItemRecord> {
    let batch: StoredRecord[] = [];
    for (const rec of this.#iterateRecords()) {
      batch.push(rec);
      if (batch.length === 1024) {
        yield* this.#withVectors(batch);
        batch = [];
      }
    }
    yield* this.#withVectors(batch);
  }

  get count(): number {
    this.#assertOpen();
    return (this.#items.getStats() as { entryCount: number }).entryCount;
  }

  get lastSeq(): bigint {
    this.#assertOpen();
    return this.#metaU64(META_LAST_SEQ);
  }

  /** Vector dimension fixed by the first upsert, or undefined for an empty catalog. */
  get dim(): number | undefined {
    this.#assertOpen();
    return this.#storedDim();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#txns.settled();
    await this.#vectors.settled();
    await this.#dropThread.close();
    this.#vectors.close();
    await this.#env.close();
  }
}
