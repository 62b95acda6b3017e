/**
 * Byte layout of an `items` value (catalog schemas 1 and 2). Values are little-endian (keys are big-endian, for
 * ordering); the catalog refuses to open on a big-endian host.
 *
 *   offset        size   field
 *   0             2      model version, u16
 *   2             1      L, number of levels, u8
 *   3             1      reserved, 0
 *   4             4      D, vector dimension, u32
 *   8             2      N, external id length in UTF-8 bytes, u16
 *   10            2L     codes, u16 each, natural order
 *   10+2L         N      external id, UTF-8
 *   ..            0-3    zero padding so the vector starts at a multiple of 4 from the record start
 *   V             4D     vector, float32 each
 *
 * Decoding always copies codes and vector out, so an ItemRecord never aliases an LMDB buffer (lmdb-js may hand
 * out reused buffers, e.g. getBinaryFast, valid only until the next read, and at any byte alignment).
 */
import { SidxError } from '../errors.ts';

export const RECORD_HEADER_BYTES = 10;

export interface ItemRecord {
  id: string;
  key: bigint;
  model: number;
  codes: Int32Array;
  vector: Float32Array;
}

function vectorOffset(levels: number, idBytes: number): number {
  return (RECORD_HEADER_BYTES + 2 * levels + idBytes + 3) & ~3;
}

export function recordLength(levels: number, idBytes: number, dim: number): number {
  return vectorOffset(levels, idBytes) + 4 * dim;
}

/** Writes a record into out[0..recordLength); returns its length. Inputs are validated by the caller. */
export function writeRecord(out: Buffer, model: number, codes: Int32Array, id: Uint8Array, vector: Float32Array): number {
  const levels = codes.length;
  const v = vectorOffset(levels, id.length);
  out.writeUInt16LE(model, 0);
  out[2] = levels;
  out[3] = 0;
  out.writeUInt32LE(vector.length, 4);
  out.writeUInt16LE(id.length, 8);
  let p = RECORD_HEADER_BYTES;
  for (let l = 0; l < levels; l++, p += 2) out.writeUInt16LE(codes[l], p);
  out.set(id, p);
  out.fill(0, p + id.length, v);
  out.set(new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength), v);
  return v + vector.byteLength;
}

function corrupt(what: string): SidxError {
  return new SidxError('SIDX_ERR_STORE', `corrupt item record: ${what}`);
}

/** Model version and codes only (used to find an item's postings). */
export function readRecordSid(buf: Uint8Array): { model: number; codes: Int32Array } {
  if (buf.length < RECORD_HEADER_BYTES) throw corrupt(`${buf.length} bytes`);
  const levels = buf[2];
  if (buf.length < RECORD_HEADER_BYTES + 2 * levels) throw corrupt('truncated codes');
  const codes = new Int32Array(levels);
  for (let l = 0, p = RECORD_HEADER_BYTES; l < levels; l++, p += 2) codes[l] = buf[p] | (buf[p + 1] << 8);
  return { model: buf[0] | (buf[1] << 8), codes };
}

/** The external id only. */
export function readRecordId(buf: Uint8Array): string {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const start = RECORD_HEADER_BYTES + 2 * buf[2]!;
  return b.toString('utf8', start, start + b.readUInt16LE(8));
}

/** A full record, with its own copies of codes and vector; `buf` may be reused by lmdb right after. */
export function readRecord(buf: Uint8Array, key: bigint): ItemRecord {
  const { model, codes } = readRecordSid(buf);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const dim = b.readUInt32LE(4);
  const idBytes = b.readUInt16LE(8);
  const idStart = RECORD_HEADER_BYTES + 2 * codes.length;
  const v = vectorOffset(codes.length, idBytes);
  if (buf.length !== v + 4 * dim) throw corrupt(`length ${buf.length}, header says ${v + 4 * dim}`);
  const vector = new Float32Array(dim);
  new Uint8Array(vector.buffer).set(buf.subarray(v, v + 4 * dim));
  return { id: b.toString('utf8', idStart, idStart + idBytes), key, model, codes, vector };
}
