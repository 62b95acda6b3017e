/**
 * SID codec: codes <-> text ("12-7-300"), AL-GR tokens ("C12C8199C16684") and sortable key bytes.
 *
 * Key layout (all big-endian so byte order = numeric order, and a prefix scan lists everything under a prefix):
 *   [0..2)  model version, u16
 *   [2]     key space: the rotation index (see rotation.ts); rotation L-1 is the natural order
 *   [3..)   codes, u16 each, in the rotation's key order
 * The store appends the item's internal key (u64) to make posting keys.
 */
import { SidxError } from '../errors.ts';
import { cachedRotationOrders, MAX_LEVELS } from './rotation.ts';

export { MAX_LEVELS } from './rotation.ts';
/** Codes are stored as u16, so a codebook has at most 65536 entries. */
export const MAX_CODEBOOK_SIZE = 65536;
export const MAX_CODE = MAX_CODEBOOK_SIZE - 1;
export const MAX_MODEL_VERSION = 0xffff;
export const SID_KEY_HEADER_BYTES = 3;

function invalid(message: string, field?: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
}

/** Throws SIDX_ERR_INVALID_INPUT unless codes is an Int32Array of 1..MAX_LEVELS codes, each in 0..MAX_CODE. */
export function assertCodes(codes: Int32Array, field = 'codes'): void {
  if (!(codes instanceof Int32Array)) throw invalid('codes must be an Int32Array', field);
  if (codes.length < 1 || codes.length > MAX_LEVELS) {
    throw invalid(`a SID has 1..${MAX_LEVELS} levels, got ${codes.length}`, field);
  }
  for (let l = 0; l < codes.length; l++) {
    const c = codes[l];
    if (c < 0 || c > MAX_CODE) throw invalid(`code at level ${l} is ${c}, must be in 0..${MAX_CODE}`, `${field}[${l}]`);
  }
}

/** Throws unless sizes are 1..MAX_LEVELS integers, each in 1..MAX_CODEBOOK_SIZE. */
export function assertCodebookSizes(sizes: ArrayLike<number>, field = 'codebookSizes'): void {
  if (sizes.length < 1 || sizes.length > MAX_LEVELS) {
    throw invalid(`codebook sizes must list 1..${MAX_LEVELS} levels, got ${sizes.length}`, field);
  }
  for (let l = 0; l < sizes.length; l++) {
    const k = sizes[l];
    if (!Number.isInteger(k) || k < 1 || k > MAX_CODEBOOK_SIZE) {
      throw invalid(`codebook size at level ${l} is ${k}, must be an integer in 1..${MAX_CODEBOOK_SIZE}`, `${field}[${l}]`);
    }
  }
}

export function assertModelVersion(model: number, field = 'model'): void {
  if (!Number.isInteger(model) || model < 0 || model > MAX_MODEL_VERSION) {
    throw invalid(`model version must be an integer in 0..${MAX_MODEL_VERSION}, got ${model}`, field);
  }
}

/**
 * Sorts `rows` (indices into `codes`, n x `levels` flat) in place by their SIDs in lexicographic code order, ties by row
 * index: the order that lays a catalog's rows out as its postings are.
 */
export function sortRowsBySid(rows: Int32Array, codes: Int32Array, levels: number): Int32Array {
  return rows.sort((a, b) => {
    for (let l = 0; l < levels; l++) {
      const d = codes[a * levels + l]! - codes[b * levels + l]!;
      if (d !== 0) return d;
    }
    return a - b;
  });
}

/** (12,7,300) -> "12-7-300". */
export function sidToText(codes: Int32Array): string {
  assertCodes(codes);
  let text = String(codes[0]);
  for (let l = 1; l < codes.length; l++) text += `-${codes[l]}`;
  return text;
}

// Canonical decimal only: no sign, no leading zeros, at most 5 digits (range checked after).
const SID_TEXT = /^(?:0|[1-9][0-9]{0,4})(?:-(?:0|[1-9][0-9]{0,4}))*$/;

/** "12-7-300" -> Int32Array [12,7,300]; with `levels`, the level count must match. */
export function parseSidText(text: string, levels?: number, field = 'sid'): Int32Array {
  if (typeof text !== 'string' || !SID_TEXT.test(text)) {
    throw invalid(`invalid SID ${typeof text === 'string' ? quote(text) : typeof text}: expected codes like "12-7-300"`, field);
  }
  const parts = text.split('-');
  if (levels !== undefined && parts.length !== levels) {
    throw invalid(`SID ${quote(text)} has ${parts.length} levels, expected ${levels}`, field);
  }
  if (parts.length > MAX_LEVELS) throw invalid(`SID ${quote(text)} has more than ${MAX_LEVELS} levels`, field);
  const codes = new Int32Array(parts.length);
  for (let l = 0; l < parts.length; l++) {
    const c = Number(parts[l]);
    if (c > MAX_CODE) throw invalid(`SID ${quote(text)}: code at level ${l} exceeds ${MAX_CODE}`, field);
    codes[l] = c;
  }
  return codes;
}

/** AL-GR's token offset per level (al_sid calc_hr: `C{lv1}C{lv2 + 8192}C{lv3 + 16384}`). */
export const ALGR_TOKEN_OFFSET = 8192;
/** Largest token offset accepted, so that every token of MAX_LEVELS levels stays within ALGR_TEXT's 10 digits. */
export const MAX_ALGR_TOKEN_OFFSET = 1 << 24;

function assertTokenOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_ALGR_TOKEN_OFFSET) {
    throw invalid(`AL-GR token offset must be an integer in 0..${MAX_ALGR_TOKEN_OFFSET}, got ${offset}`, 'tokenOffset');
  }
}

/**
 * AL-GR token form: level l's token is its code + l x `tokenOffset` (default 8192, as al_sid writes them whatever
 * the codebook sizes), e.g. (12, 7, 300) -> "C12C8199C16684".
 */
export function sidToAlgr(codes: Int32Array, codebookSizes: ArrayLike<number>, tokenOffset = ALGR_TOKEN_OFFSET): string {
  assertCodes(codes);
  assertCodebookSizes(codebookSizes);
  assertTokenOffset(tokenOffset);
  if (codes.length !== codebookSizes.length) {
    throw invalid(`SID has ${codes.length} levels, codebook sizes list ${codebookSizes.length}`, 'codes');
  }
  let text = '';
  for (let l = 0; l < codes.length; l++) {
    const k = codebookSizes[l];
    if (codes[l] >= k) throw invalid(`code at level ${l} is ${codes[l]}, codebook size is ${k}`, `codes[${l}]`);
    text += `C${l * tokenOffset + codes[l]}`;
  }
  return text;
}

const ALGR_TEXT = /^(?:C(?:0|[1-9][0-9]{0,9}))+$/;

/**
 * "C12C8199C16684" with 3 x 8192 -> [12,7,300]: level l's token minus l x `tokenOffset` (default 8192) must be a
 * code of that level's codebook.
 */
export function parseAlgr(text: string, codebookSizes: ArrayLike<number>, field = 'sid', tokenOffset = ALGR_TOKEN_OFFSET): Int32Array {
  assertCodebookSizes(codebookSizes);
  assertTokenOffset(tokenOffset);
  if (typeof text !== 'string' || !ALGR_TEXT.test(text)) {
    throw invalid(`invalid AL-GR SID ${typeof text === 'string' ? quote(text) : typeof text}: expected tokens like "C12C8199C16684"`, field);
  }
  const parts = text.split('C');
  const levels = parts.length - 1;
  if (levels !== codebookSizes.length) {
    throw invalid(`AL-GR SID ${quote(text)} has ${levels} tokens, expected ${codebookSizes.length}`, field);
  }
  const codes = new Int32Array(levels);
  for (let l = 0; l < levels; l++) {
    const k = codebookSizes[l];
    const offset = l * tokenOffset;
    const c = Number(parts[l + 1]) - offset;
    if (c < 0 || c >= k) {
      throw invalid(`AL-GR SID ${quote(text)}: token ${l} is ${parts[l + 1]}, level ${l} accepts ${offset}..${offset + k - 1}`
        + ` (code + ${l} x token offset ${tokenOffset})`, field);
    }
    codes[l] = c;
  }
  return codes;
}

/** Bytes of a full SID key for L levels. */
export function sidKeyLength(levels: number): number {
  return SID_KEY_HEADER_BYTES + 2 * levels;
}

function writeHeader(out: Uint8Array, offset: number, model: number, rotation: number): void {
  assertModelVersion(model);
  out[offset] = model >>> 8;
  out[offset + 1] = model & 0xff;
  out[offset + 2] = rotation;
}

/**
 * Writes the key of `codes` (natural order) in key space `rotation` into `out` at `offset`; returns the end offset.
 * Only the first `count` key-order codes are written (default all: a full key; fewer: a scan prefix).
 */
export function writeSidKey(
  out: Uint8Array,
  offset: number,
  model: number,
  rotation: number,
  codes: Int32Array,
  count = codes.length,
): number {
  assertCodes(codes);
  const levels = codes.length;
  if (!Number.isInteger(rotation) || rotation < 0 || rotation >= levels) {
    throw invalid(`rotation must be in 0..${levels - 1}, got ${rotation}`, 'rotation');
  }
  if (!Number.isInteger(count) || count < 0 || count > levels) throw invalid(`count must be in 0..${levels}`, 'count');
  const order = cachedRotationOrders(levels)[rotation];
  writeHeader(out, offset, model, rotation);
  let p = offset + SID_KEY_HEADER_BYTES;
  for (let j = 0; j < count; j++) {
    const c = codes[order[j]];
    out[p++] = c >>> 8;
    out[p++] = c & 0xff;
  }
  return p;
}

/** A fresh key for `codes` in key space `rotation` (rotation L-1 = natural order). */
export function encodeSidKey(model: number, rotation: number, codes: Int32Array): Buffer {
  const out = Buffer.allocUnsafe(sidKeyLength(codes.length));
  writeSidKey(out, 0, model, rotation, codes);
  return out;
}

/**
 * A prefix in key space `rotation` whose codes are given already in key order (for the natural rotation
 * L-1 that is simply a SID prefix). `levels` is the model's L, which the rotation index depends on.
 */
export function encodeSidPrefix(model: number, rotation: number, keyOrderCodes: Int32Array, levels: number): Buffer {
  if (!Number.isInteger(levels) || levels < 1 || levels > MAX_LEVELS) throw invalid(`levels must be in 1..${MAX_LEVELS}`, 'levels');
  if (!Number.isInteger(rotation) || rotation < 0 || rotation >= levels) {
    throw invalid(`rotation must be in 0..${levels - 1}, got ${rotation}`, 'rotation');
  }
  if (keyOrderCodes.length > levels) throw invalid(`prefix has ${keyOrderCodes.length} codes, model has ${levels} levels`, 'codes');
  if (keyOrderCodes.length > 0) assertCodes(keyOrderCodes);
  const out = Buffer.allocUnsafe(SID_KEY_HEADER_BYTES + 2 * keyOrderCodes.length);
  writeHeader(out, 0, model, rotation);
  for (let j = 0; j < keyOrderCodes.length; j++) out.writeUInt16BE(keyOrderCodes[j], SID_KEY_HEADER_BYTES + 2 * j);
  return out;
}

export interface DecodedSidKey {
  model: number;
  rotation: number;
  /** Natural order. */
  codes: Int32Array;
}

/** Reads a SID key of L levels from the start of `key` (trailing bytes, e.g. a posting's internal key, are ignored). */
export function decodeSidKey(key: Uint8Array, levels: number): DecodedSidKey {
  if (key.length < sidKeyLength(levels)) throw invalid(`key has ${key.length} bytes, a ${levels}-level SID key needs ${sidKeyLength(levels)}`, 'key');
  const rotation = key[2];
  if (rotation >= levels) throw invalid(`key space ${rotation} is out of range for ${levels} levels`, 'key');
  const order = cachedRotationOrders(levels)[rotation];
  const codes = new Int32Array(levels);
  for (let j = 0; j < levels; j++) {
    const p = SID_KEY_HEADER_BYTES + 2 * j;
    codes[order[j]] = (key[p] << 8) | key[p + 1];
  }
  return { model: (key[0] << 8) | key[1], rotation, codes };
}
