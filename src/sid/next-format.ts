/**
 * The binary answer of POST /v1/sids/next (`Accept: application/octet-stream`; docs/sid-trie.md), little-endian:
 *
 *   offset  size  field
 *   0       4     magic "SIDN"
 *   4       1     format version (1)
 *   5       1     L, levels
 *   6       1     code bytes: 2 when every codebook size is at most 65,536, else 4
 *   7       1     reserved (0)
 *   8       4     nPrefixes (u32)
 *   12      ...   per prefix, in request order: m (u32), m codes (code bytes each, ascending), m counts (u32 each)
 *
 * Nothing is padded. Each prefix's piece is cached by the identity of the trie's entry object (SidTrie.next hands out
 * one per node until a write changes it), so a repeated prefix costs one Map lookup and one copy.
 */
import { SidxError } from '../errors.ts';
import type { NextCodes } from './sid-trie.ts';

export const NEXT_MAGIC = 'SIDN';
export const NEXT_FORMAT_VERSION = 1;
export const NEXT_HEADER_BYTES = 12;

export type CodeBytes = 2 | 4;

/** 2 when every code fits a u16, else 4. */
export function codeBytesFor(codebookSizes: readonly number[]): CodeBytes {
  return codebookSizes.every((k) => k <= 65_536) ? 2 : 4;
}

/** One cache per code width: an entry's piece depends on it (the trie entries of one model all share one width). */
const pieces: Record<CodeBytes, WeakMap<object, Buffer>> = { 2: new WeakMap(), 4: new WeakMap() };

function asBytes(a: Uint16Array | Uint32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** m, codes, counts of one entry (codes and counts copied in host order, which is little-endian). */
function piece(e: Readonly<NextCodes>, codeBytes: CodeBytes): Buffer {
  const cache = pieces[codeBytes];
  let p = cache.get(e);
  if (p !== undefined) return p;
  const m = e.codes.length;
  p = Buffer.allocUnsafeSlow(4 + m * (codeBytes + 4));
  p.writeUInt32LE(m, 0);
  // The trie's codes are Int32Array of non-negative values below the codebook size: the same bytes as u32.
  asBytes(codeBytes === 2 ? Uint16Array.from(e.codes) : e.codes).copy(p, 4);
  asBytes(e.counts).copy(p, 4 + m * codeBytes);
  cache.set(e, p);
  return p;
}

export interface NextMessage {
  levels: number;
  codeBytes: CodeBytes;
  next: ReadonlyArray<Readonly<NextCodes>>;
}

/** The binary form of a `next` answer: the pieces' sizes summed, one allocation, one copy per prefix. */
export function encodeNext(msg: NextMessage): Buffer {
  const parts = new Array<Buffer>(msg.next.length);
  let size = NEXT_HEADER_BYTES;
  for (let i = 0; i < parts.length; i++) {
    const p = piece(msg.next[i]!, msg.codeBytes);
    parts[i] = p;
    size += p.length;
  }
  const out = Buffer.allocUnsafe(size);
  out.write(NEXT_MAGIC, 0, 'latin1');
  out[4] = NEXT_FORMAT_VERSION;
  out[5] = msg.levels;
  out[6] = msg.codeBytes;
  out[7] = 0;
  out.writeUInt32LE(parts.length, 8);
  let at = NEXT_HEADER_BYTES;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

function bad(message: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', `SID next: ${message}`, { field: 'next' });
}

export interface DecodedNext {
  levels: number;
  codeBytes: CodeBytes;
  next: Array<{ codes: number[]; counts: number[] }>;
}

/** Parses the binary form (e.g. a response body); the reference decoder of the layout above. */
export function decodeNext(buf: Uint8Array): DecodedNext {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < NEXT_HEADER_BYTES || b.toString('latin1', 0, 4) !== NEXT_MAGIC) throw bad('no SIDN header');
  if (b[4] !== NEXT_FORMAT_VERSION) throw bad(`format version ${b[4]} is not supported`);
  const codeBytes = b[6]!;
  if (codeBytes !== 2 && codeBytes !== 4) throw bad(`code bytes ${codeBytes}`);
  const n = b.readUInt32LE(8);
  const next: DecodedNext['next'] = [];
  let at = NEXT_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    if (at + 4 > b.length) throw bad(`truncated at prefix ${i}`);
    const m = b.readUInt32LE(at);
    at += 4;
    if (at + m * (codeBytes + 4) > b.length) throw bad(`truncated at prefix ${i}`);
    const codes = Array.from({ length: m }, (_, j) => (codeBytes === 2 ? b.readUInt16LE(at + 2 * j) : b.readUInt32LE(at + 4 * j)));
    at += m * codeBytes;
    const counts = Array.from({ length: m }, (_, j) => b.readUInt32LE(at + 4 * j));
    at += m * 4;
    next.push({ codes, counts });
  }
  if (at !== b.length) throw bad(`${b.length - at} bytes after the last prefix`);
  return { levels: b[5]!, codeBytes, next };
}
