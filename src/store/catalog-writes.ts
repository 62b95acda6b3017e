/**
 * The catalog's item writes (layouts in catalog.ts): an upsert batch (its vectors to the vector file first,
 * catalog-vectors.ts) and a delete batch, each one write transaction.
 */
import type { Database } from 'lmdb';
import { SidxError } from '../errors.ts';
import { MAX_LEVELS, sidKeyLength } from '../sid/codec.ts';
import { validateDelete, validateUpsertCodes, validateUpsertRows, type UpsertInput } from './catalog-input.ts';
import { checkLevels, putSideSid, removeSideSids, writePostings, type SpaceDbs } from './catalog-spaces.ts';
import type { CatalogVectors, SlotReservation, StagedRows } from './catalog-vectors.ts';
import { META_DIM, META_LAST_SEQ, META_NEXT_KEY, readMetaU32, readMetaU64, storeError, u32Value } from './catalog-meta.ts';
import { ChangeWriter, OP_DELETE, OP_UPSERT } from './change-log.ts';
import { MAX_INTERNAL_KEY, readU64BE, u64Key, U64_BYTES } from './keys.ts';
import { readRecordSid, readRecordSlot, recordLength, writeRecord } from './record.ts';
import { joinedRows } from '../vector/joined-rows.ts';

type Bin = Database<Buffer, Buffer>;

export interface WriteDbs {
  ids: Bin;
  items: Bin;
  changes: Bin;
  meta: Bin;
  spaces: SpaceDbs;
  vectors: CatalogVectors;
  write<T>(what: string, fn: () => T): T;
  writeAsync<T>(what: string, fn: () => T): Promise<T>;
  storedDim(): number | undefined;
}

export interface UpsertResult {
  seq: bigint;
  keys: BigInt64Array;
  replaced: boolean[];
  /** Row of each item's vector in the vector file. */
  slots: Uint32Array;
}

/** A validated batch (its rows are reserved and written before its commit: steps 1-2 of catalog-vectors.ts). */
interface PreparedUpsert {
  model: number;
  items: UpsertInput[];
  alt?: { model: number; codes: Int32Array[] };
  levels: number;
  dim: number;
  idBytes: Buffer[];
  /** The batch's vectors, row i for item i. */
  flat: Float32Array;
}

/** One upsert batch, synchronously: validated, vectors written and synced, then one write transaction. */
export function upsertItems(db: WriteDbs, model: number, items: UpsertInput[], alt?: { model: number; codes: Int32Array[] }): UpsertResult {
  const batch = prepareUpsert(db, model, items, alt);
  const reserved = vectorFileStep(() => db.vectors.reserve(items.length));
  try {
    vectorFileStep(() => db.vectors.persist(batch.dim, reserved.slots, batch.flat));
    return commitUpsert(db, batch, reserved, db.write);
  } finally {
    db.vectors.release(reserved);
  }
}

/** An upsert batch checked as far as it can be without SIDs, its vectors written ahead of its transaction (`stageBatch`). */
export interface StagedBatch extends StagedRows {
  /** The items' ids, UTF-8. */
  idBytes: Buffer[];
}

/**
 * Checks `items` for what needs no SIDs (validateUpsertRows: a batch refused there is neither encoded nor written) and
 * writes their vectors to rows of the vector file (CatalogVectors.stage) while the caller encodes them; the result goes
 * to `upsertItemsAsync` with the same items, and is released by the caller.
 */
export function stageBatch(db: WriteDbs, items: ReadonlyArray<Pick<UpsertInput, 'id' | 'vector'>>, modelDim?: number, finiteChecked = false): StagedBatch {
  const { dim, idBytes } = validateUpsertRows(items, modelDim, finiteChecked);
  assertStoredDim(db, dim);
  const rows = vectorFileStep(() => db.vectors.stage(dim, joinedRows(items.map((it) => it.vector), dim)));
  return { ...rows, idBytes };
}

/**
 * `upsertItems` with the vector file's writes and fdatasync off the event loop: `staged` when the caller staged the
 * batch (`stageBatch`, with the same items; the caller releases it), else staged here. `around` wraps the commit alone
 * (the cluster log position is staged there, catalog.ts): whatever commits while the sync runs cannot carry this
 * batch's staged values. The reserved rows stay held until it settles, so a batch pipelined behind it
 * (catalog-txns.ts) takes others.
 */
export async function upsertItemsAsync(db: WriteDbs, model: number, items: UpsertInput[], alt: { model: number; codes: Int32Array[] } | undefined,
  around: (commit: () => Promise<UpsertResult>) => Promise<UpsertResult>, staged?: StagedBatch): Promise<UpsertResult> {
  if (staged && (staged.idBytes.length !== items.length || staged.vectors.length !== items.length * staged.dim)) {
    throw new SidxError('SIDX_ERR_INTERNAL', `the staged batch holds ${staged.idBytes.length} items, the upsert ${items.length}`);
  }
  const batch = prepareUpsert(db, model, items, alt, staged);
  const rows = staged ?? vectorFileStep(() => db.vectors.stage(batch.dim, batch.flat));
  try {
    await rows.written.catch((err: unknown) => {
      throw storeError(err, 'upsert (vector file)');
    });
    return await around(() => commitUpsert(db, batch, rows.reserved, db.writeAsync));
  } finally {
    if (!staged) await rows.release();
  }
}

export function vectorFileStep<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    throw storeError(err, 'upsert (vector file)');
  }
}

/** Validates the batch (a refused one writes nothing); the rows of a `staged` one were checked when it was staged. */
function prepareUpsert(db: WriteDbs, model: number, items: UpsertInput[], alt?: { model: number; codes: Int32Array[] }, staged?: StagedBatch): PreparedUpsert {
  const { dim, idBytes } = staged ?? validateUpsertRows(items);
  const levels = validateUpsertCodes(model, items.map((it) => it.codes));
  if (alt) validateUpsertCodes(alt.model, items.map((_it, i) => alt.codes[i]!));
  if (alt?.model === model) throw new SidxError('SIDX_ERR_INVALID_INPUT', 'alt.model must differ from model', { field: 'alt.model' });
  assertStoredDim(db, dim);
  const flat = staged?.vectors ?? joinedRows(items.map((it) => it.vector), dim);
  return { model, items, alt, levels, dim, idBytes, flat };
}

/** Refuses `dim`-d vectors in a catalog that holds vectors of another dimension. */
export function assertStoredDim(db: Pick<WriteDbs, 'storedDim'>, dim: number): void {
  const storedDim = db.storedDim();
  if (storedDim !== undefined && storedDim !== dim) {
    throw new SidxError('SIDX_ERR_DIMENSION', `the catalog holds ${storedDim}-dimensional vectors, the batch has ${dim}`, { field: 'items[0].vector' });
  }
}

/** Step 3: the write transaction of a prepared batch whose vectors are on disk. */
function commitUpsert<R>(db: WriteDbs, batch: PreparedUpsert, reserved: SlotReservation, write: (what: string, fn: () => UpsertResult) => R): R {
  const { model, items, alt, levels, dim, idBytes } = batch;
  let maxRecord = 0;
  for (let i = 0; i < items.length; i++) maxRecord = Math.max(maxRecord, recordLength(levels, idBytes[i].length));
  const recordBuf = Buffer.allocUnsafe(maxRecord);
  // lmdb-js copies keys and values during put inside a sync transaction, so scratch buffers can be reused.
  const postingBuf = Buffer.allocUnsafe(sidKeyLength(levels) + U64_BYTES);
  const oldPostingBuf = Buffer.alloc(sidKeyLength(MAX_LEVELS) + U64_BYTES);
  const changes = new ChangeWriter(db.changes, items.length);
  const keys = new BigInt64Array(items.length);
  const replaced: boolean[] = new Array<boolean>(items.length).fill(false);

  return write('upsert', () => {
    checkLevels(db.meta, model, levels, 'items[0].codes');
    let nextKey = readMetaU64(db.meta, META_NEXT_KEY);
    if (nextKey + BigInt(items.length) > MAX_INTERNAL_KEY) throw new SidxError('SIDX_ERR_STORE', 'internal keys exhausted');
    let seq = readMetaU64(db.meta, META_LAST_SEQ);
    if (readMetaU32(db.meta, META_DIM) === undefined) db.meta.put(META_DIM, u32Value(dim));
    db.vectors.commit(reserved);
    if (alt) checkLevels(db.meta, alt.model, alt.codes[0]!.length, 'alt.codes');

    for (let i = 0; i < items.length; i++) {
      const { codes } = items[i];
      let keyBuf = db.ids.getBinary(idBytes[i]);
      let unchangedSid = false;
      if (keyBuf !== undefined) {
        replaced[i] = true;
        removeSideSids(db.spaces, keyBuf, oldPostingBuf);
        const old = db.items.getBinary(keyBuf);
        if (old !== undefined) {
          db.vectors.free(readRecordSlot(old));
          const sid = readRecordSid(old);
          unchangedSid = sid.model === model && sid.codes.length === levels && sid.codes.every((c, l) => c === codes[l]);
          if (!unchangedSid) writePostings(db.spaces, oldPostingBuf, sid.model, sid.codes, keyBuf, true);
        }
      } else {
        keyBuf = u64Key(nextKey++);
        db.ids.put(idBytes[i], keyBuf);
      }
      keys[i] = readU64BE(keyBuf, 0);
      const len = writeRecord(recordBuf, model, codes, idBytes[i], dim, reserved.slots[i]!);
      db.items.put(keyBuf, recordBuf.subarray(0, len));
      if (!unchangedSid) writePostings(db.spaces, postingBuf, model, codes, keyBuf, false);
      if (alt) putSideSid(db.spaces, keyBuf, alt.model, alt.codes[i]!, oldPostingBuf);
      changes.append(++seq, OP_UPSERT, keyBuf);
    }
    changes.flush();
    db.meta.put(META_NEXT_KEY, u64Key(nextKey));
    db.meta.put(META_LAST_SEQ, u64Key(seq));
    return { seq, keys, replaced, slots: reserved.slots };
  });
}

/** Removes items (record, id mapping, every posting, the vector's row) in one transaction; unknown ids are reported. */
export function deleteItems(db: WriteDbs, ids: string[]): { seq: bigint; removed: BigInt64Array; missing: string[] } {
  const idBytes = validateDelete(ids);
  const postingBuf = Buffer.alloc(sidKeyLength(MAX_LEVELS) + U64_BYTES);
  const changes = new ChangeWriter(db.changes, ids.length);
  return db.write('delete', () => {
    let seq = readMetaU64(db.meta, META_LAST_SEQ);
    const removed: bigint[] = [];
    const missing: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const keyBuf = db.ids.getBinary(idBytes[i]);
      if (keyBuf === undefined) {
        missing.push(ids[i]);
        continue;
      }
      removeSideSids(db.spaces, keyBuf, postingBuf);
      const old = db.items.getBinary(keyBuf);
      if (old !== undefined) {
        const sid = readRecordSid(old);
        writePostings(db.spaces, postingBuf, sid.model, sid.codes, keyBuf, true);
        db.vectors.free(readRecordSlot(old));
        db.items.remove(keyBuf);
      }
      db.ids.remove(idBytes[i]);
      changes.append(++seq, OP_DELETE, keyBuf);
      removed.push(readU64BE(keyBuf, 0));
    }
    changes.flush();
    if (removed.length > 0) db.meta.put(META_LAST_SEQ, u64Key(seq));
    return { seq, removed: BigInt64Array.from(removed), missing };
  });
}
