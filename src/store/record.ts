/**
 * Byte layout of an `items` value. Values are little-endian (keys are big-endian, for ordering); the catalog refuses
 * to open on a big-endian host.
 *
 *   offset        size   field
 *   0             2      model version, u16
 *   2             1      L, number of levels, u8
 *   3             1      where the vector is: 1 = slot in the catalog's vector file (schema 4), 0 = inline (schemas 1-3)
 *   4             4      D, vector dimension, u32
 *   8             2      N, external id length in UTF-8 bytes, u16
 *   10            2L     codes, u16 each, natural order
 *   10+2L         N      external id, UTF-8
 *   ..            0-3    zero padding so the next field starts at a multiple of 4 from the record start
 *   V             4      slot, u32: row of the vector in `vectors.f32` (catalog-vectors.ts)      [format 1]
 *   V             4D     vector, float32 each                                                     [format 0]
 *
 * Schema 4 stores each vector once, in the vector file; a record is ~20 bytes plus codes and id, so B-tree pages
 * hold many records and no record needs a 4 KiB overflow page. Format 0 is read only to upgrade older catalogs.
 * Decoding always copies codes (and an inline vector) out, so a record never aliases an LMDB buffer (lmdb-js may
 * hand out reused buffers, e.g. getBinaryFast, valid only until the next read, and at any byte alignment).
 */
import { SidxError } from '../errors.ts';

export const RECORD_HEADER_BYTES = 10;
const FORMAT_INLINE = 0;
const FORMAT_SLOT = 1;
/** Largest slot a record can name (u32; 0xffffffff stays unused). */
export const MAX_SLOT = 0xffff_fffe;

/** An item as the catalog hands it out: the record plus its vector, read from the vector file. */
export interface ItemRecord {
  id: string;
  key: bigint;
  model: number;
  codes: Int32Array;
  vector: Float32Array;
}

/** A decoded record: where its vector lives (`slot`), or, in a format-0 record, the vector itself. */
export interface StoredRecord {
  id: string;
  key: bigint;
  model: number;
  codes: Int32Array;
  dim: number;
  /** Row in the vector file; -1 for a format-0 record. */
  slot: number;
  /** Format 0 only. */
  inline?: Float32Array;
}

function payloadOffset(levels: number, idBytes: number): number {
  return (RECORD_HEADER_BYTES + 2 * levels + idBytes + 3) & ~3;
}

export function recordLength(levels: number, idBytes: number): number {
  return payloadOffset(levels, idBytes) + 4;
}

function writeHeader(out: Buffer, model: number, codes: Int32Array, id: Uint8Array, dim: number, format: number): number {
  const levels = codes.length;
  const v = payloadOffset(levels, id.length);
  out.writeUInt16LE(model, 0);
  out[2] = levels;
  out[3] = format;
  out.writeUInt32LE(dim, 4);
  out.writeUInt16LE(id.length, 8);
  let p = RECORD_HEADER_BYTES;
  for (let l = 0; l < levels; l++, p += 2) out.writeUInt16LE(codes[l], p);
  out.set(id, p);
  out.fill(0, p + id.length, v);
  return v;
}

/** Writes a record into out[0..recordLength); returns its length. Inputs are validated by the caller. */
export function writeRecord(out: Buffer, model: number, codes: Int32Array, id: Uint8Array, dim: number, slot: number): number {
  const v = writeHeader(out, model, codes, id, dim, FORMAT_SLOT);
  out.writeUInt32LE(slot, v);
  return v + 4;
}

/** A format-0 record (vector inline), as schemas 1-3 wrote them: for tests of the upgrade. */
export function writeInlineRecord(model: number, codes: Int32Array, id: Uint8Array, vector: Float32Array): Buffer {
  const out = Buffer.alloc(payloadOffset(codes.length, id.length) + vector.byteLength);
  const v = writeHeader(out, model, codes, id, vector.length, FORMAT_INLINE);
  out.set(new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength), v);
  return out;
}

/** `buf` itself when it is a Buffer (lmdb-js's values are), else a Buffer view of the same bytes. */
function bufferOf(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
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
  const b = bufferOf(buf);
  const start = RECORD_HEADER_BYTES + 2 * buf[2]!;
  return b.toString('utf8', start, start + b.readUInt16LE(8));
}

/** A full record, with its own copies of codes (and inline vector); `buf` may be reused by lmdb right after. */
export function readStoredRecord(buf: Uint8Array, key: bigint): StoredRecord {
  const { model, codes } = readRecordSid(buf);
  const b = bufferOf(buf);
  const dim = b.readUInt32LE(4);
  const idBytes = b.readUInt16LE(8);
  const idStart = RECORD_HEADER_BYTES + 2 * codes.length;
  const v = payloadOffset(codes.length, idBytes);
  const id = b.toString('utf8', idStart, idStart + idBytes);
  if (buf[3] === FORMAT_SLOT) {
    if (buf.length !== v + 4) throw corrupt(`length ${buf.length}, header says ${v + 4}`);
    return { id, key, model, codes, dim, slot: b.readUInt32LE(v) };
  }
  if (buf[3] !== FORMAT_INLINE) throw corrupt(`unknown format ${buf[3]}`);
  if (buf.length !== v + 4 * dim) throw corrupt(`length ${buf.length}, header says ${v + 4 * dim}`);
  const inline = new Float32Array(dim);
  new Uint8Array(inline.buffer).set(buf.subarray(v, v + 4 * dim));
  return { id, key, model, codes, dim, slot: -1, inline };
}

/** The slot of a format-1 record, -1 for a format-0 one (no copies). */
export function readRecordSlot(buf: Uint8Array): number {
  if (buf[3] !== FORMAT_SLOT) return -1;
  const b = bufferOf(buf);
  return b.readUInt32LE(payloadOffset(buf[2]!, b.readUInt16LE(8)));
}

/** The same record with another SID (the vector stays where it is); format 1 only. */
export function withSid(buf: Uint8Array, key: bigint, model: number, codes: Int32Array): Buffer {
  const rec = readStoredRecord(buf, key);
  if (rec.slot < 0) throw corrupt('a format-0 record in a schema-4 catalog');
  const id = Buffer.from(rec.id, 'utf8');
  const out = Buffer.allocUnsafe(recordLength(codes.length, id.length));
  writeRecord(out, model, codes, id, rec.dim, rec.slot);
  return out;
}
