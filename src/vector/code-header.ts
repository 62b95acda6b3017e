/**
 * The header of a codes file (code-store.ts): magic (8 bytes), dim (u32 LE), the format's parameter (u32 LE), then
 * the quantiser (the format's payload), padded to 4 KiB; the codes follow it.
 */
import { fdatasyncSync } from 'node:fs';
import { SidxError } from '../errors.ts';
import type { CodeFormat } from './code-store.ts';
import { readFully, writeFully } from './vector-file.ts';

const PAGE = 4096;
const PREFIX = 16;

/** Bytes before the first code. */
export function headerBytes(format: CodeFormat): number {
  return Math.ceil((PREFIX + format.payloadBytes) / PAGE) * PAGE;
}

/**
 * Writes the payload, fdatasyncs, and only then writes the first 16 bytes (one sector) and fdatasyncs again: a file
 * whose training was cut short has no magic and is refused.
 */
export function writeHeader(fd: number, format: CodeFormat, dim: number, payload: Uint8Array): void {
  writeFully(fd, payload, PREFIX);
  fdatasyncSync(fd);
  const prefix = Buffer.alloc(PREFIX);
  format.magic.copy(prefix, 0);
  prefix.writeUInt32LE(dim, 8);
  prefix.writeUInt32LE(format.param, 12);
  writeFully(fd, prefix, 0);
  fdatasyncSync(fd);
}

/** The payload of a file of `size` bytes; throws SIDX_ERR_STORE when it is short, foreign or of another parameter. */
export function readHeaderPayload(fd: number, size: number, header: number, format: CodeFormat, dim: number): Buffer {
  if (size < header) throw codesFileError(format, `${size} bytes, shorter than its header`);
  const bytes = Buffer.alloc(PREFIX + format.payloadBytes);
  readFully(fd, bytes, 0);
  if (!bytes.subarray(0, 8).equals(format.magic) || bytes.readUInt32LE(8) !== dim) throw codesFileError(format, `not a ${dim}-d sidx codes file`);
  const got = bytes.readUInt32LE(12);
  if (got !== format.param) throw codesFileError(format, `written with parameter ${got}, this store uses ${format.param}`);
  return bytes.subarray(PREFIX);
}

export function codesFileError(format: CodeFormat, message: string, code: 'SIDX_ERR_STORE' | 'SIDX_ERR_VECTOR' = 'SIDX_ERR_STORE'): SidxError {
  return new SidxError(code, `${format.name} codes file: ${message}`);
}
