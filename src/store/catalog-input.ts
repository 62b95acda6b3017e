/** Validation of catalog inputs that needs no storage access: runs before any write transaction starts. */
import { SidxError } from '../errors.ts';
import { firstNonFinite } from '../finite.ts';
import { assertCodes, assertModelVersion } from '../sid/codec.ts';

/** External ids are LMDB keys (max ~1978 bytes); keep well under, and UTF-8 length must fit the record's u16. */
export const MAX_ID_BYTES = 512;

const LONE_SURROGATE = /\p{Cs}/u;

export interface UpsertInput {
  id: string;
  vector: Float32Array;
  codes: Int32Array;
}

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

/** UTF-8 bytes of a valid external id. Lone surrogates are rejected: UTF-8 would map distinct ids to one key. */
export function idBytesOf(id: unknown, field: string): Buffer {
  if (typeof id !== 'string' || id.length === 0) throw invalid('id must be a non-empty string', field);
  if (LONE_SURROGATE.test(id)) throw invalid('id contains an unpaired UTF-16 surrogate', field);
  const bytes = Buffer.from(id, 'utf8');
  if (bytes.length > MAX_ID_BYTES) throw invalid(`id is ${bytes.length} UTF-8 bytes, the limit is ${MAX_ID_BYTES}`, field);
  return bytes;
}

export function assertLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw invalid(`limit must be a non-negative integer, got ${limit}`, 'limit');
}

/** The SIDs of a batch (`codes[i]`: item i's) in `model`: valid codes with one level count, which it returns. */
export function validateUpsertCodes(model: number, codes: readonly Int32Array[]): number {
  assertModelVersion(model);
  let levels = 0;
  for (let i = 0; i < codes.length; i++) {
    assertCodes(codes[i], `items[${i}].codes`);
    if (i === 0) levels = codes[i]!.length;
    else if (codes[i]!.length !== levels) throw invalid(`SID has ${codes[i]!.length} levels, items[0] has ${levels}`, `items[${i}].codes`);
  }
  return levels;
}

/**
 * An upsert batch's checks that need no SIDs (validateUpsertCodes has the others): a non-empty batch of distinct valid
 * ids and finite vectors of one dimension (`modelDim` when given). An upsert staged ahead (catalog-writes.ts,
 * `stageBatch`) is checked so before it is encoded or written, and not again. `finiteChecked`: the caller refused
 * non-finite values already (an input reader, the HTTP decoder), so the values are not read a second time.
 */
export function validateUpsertRows(items: ReadonlyArray<Pick<UpsertInput, 'id' | 'vector'>>, modelDim?: number, finiteChecked = false): { dim: number; idBytes: Buffer[] } {
  if (!Array.isArray(items)) throw invalid('items must be an array', 'items');
  if (items.length === 0) throw new SidxError('SIDX_ERR_BATCH_EMPTY', 'upsert batch is empty', { field: 'items' });
  const seen = new Set<string>();
  const idBytes: Buffer[] = [];
  let dim = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item === null || typeof item !== 'object') throw invalid('item must be an object', `items[${i}]`);
    idBytes.push(idBytesOf(item.id, `items[${i}].id`));
    if (seen.has(item.id)) throw new SidxError('SIDX_ERR_DUPLICATE_ID', `id ${JSON.stringify(item.id)} appears twice in the batch`, { field: `items[${i}].id` });
    seen.add(item.id);

    const v = item.vector;
    if (!(v instanceof Float32Array)) throw invalid('vector must be a Float32Array', `items[${i}].vector`);
    if (i === 0) {
      if (v.length === 0) throw new SidxError('SIDX_ERR_DIMENSION', 'vector is empty', { field: `items[${i}].vector` });
      if (modelDim !== undefined && v.length !== modelDim) {
        throw new SidxError('SIDX_ERR_DIMENSION', `vector has ${v.length} dimensions, the model takes ${modelDim}`, { field: `items[${i}].vector` });
      }
      dim = v.length;
    } else if (v.length !== dim) {
      throw new SidxError('SIDX_ERR_DIMENSION', `vector has ${v.length} dimensions, items[0] has ${dim}`, { field: `items[${i}].vector` });
    }
    const j = finiteChecked ? -1 : firstNonFinite(v);
    if (j >= 0) throw new SidxError('SIDX_ERR_NOT_FINITE', `vector[${j}] is ${v[j]}`, { field: `items[${i}].vector[${j}]` });
  }
  return { dim, idBytes };
}

export function validateDelete(ids: readonly string[]): Buffer[] {
  if (!Array.isArray(ids)) throw invalid('ids must be an array', 'ids');
  if (ids.length === 0) throw new SidxError('SIDX_ERR_BATCH_EMPTY', 'delete batch is empty', { field: 'ids' });
  const seen = new Set<string>();
  const out: Buffer[] = [];
  for (let i = 0; i < ids.length; i++) {
    out.push(idBytesOf(ids[i], `ids[${i}]`));
    if (seen.has(ids[i])) throw new SidxError('SIDX_ERR_DUPLICATE_ID', `id ${JSON.stringify(ids[i])} appears twice in the batch`, { field: `ids[${i}]` });
    seen.add(ids[i]);
  }
  return out;
}
