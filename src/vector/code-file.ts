/**
 * The file of a code store (code-store.ts): magic (8 bytes), dim (u32 LE), the format's parameter (u32 LE), then the
 * quantiser (the format's payload), padded to 4 KiB; then slot s's codes at `header` + s * codeSize. Empty = not
 * trained yet.
 *
 * The header is written last, once the codes it covers are durable: the payload, fdatasync, and only then the first 16
 * bytes (one sector), fdatasync again: a file whose training was cut short has no magic and is refused.
 */
import { closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { SidxError } from '../errors.ts';
import type { NativeCodes } from './binding.ts';
import type { CodeFormat } from './code-format.ts';
import { callNativeAsync } from './vector-index.ts';
import { fdatasyncAsync, readFully, writeFully } from './vector-file.ts';

const PAGE = 4096;
const PREFIX = 16;

export class CodesFile {
  /** Bytes before the first code. */
  readonly header: number;
  readonly #path: string;
  readonly #format: CodeFormat;
  readonly #dim: number;
  #fd: number;

  constructor(path: string, format: CodeFormat, dim: number) {
    this.#path = path;
    this.#format = format;
    this.#dim = dim;
    this.header = Math.ceil((PREFIX + format.payloadBytes) / PAGE) * PAGE;
    this.#fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  }

  /** Bytes in the file (0: not trained). */
  get size(): number {
    return fstatSync(this.#fd).size;
  }

  /**
   * The quantiser's payload of a trained file holding codes for `slots` slots (a longer tail is cut off); throws
   * SIDX_ERR_STORE when it is short, foreign or of another parameter.
   */
  readPayload(slots: number): Buffer {
    const size = this.size;
    if (size < this.header) throw this.error(`${size} bytes, shorter than its header`);
    const bytes = Buffer.alloc(PREFIX + this.#format.payloadBytes);
    readFully(this.#fd, bytes, 0);
    const former = this.#format.former?.find((f) => bytes.subarray(0, 8).equals(f.magic));
    if (former) throw this.error(`written in an earlier format (${former.what})`);
    if (!bytes.subarray(0, 8).equals(this.#format.magic) || bytes.readUInt32LE(8) !== this.#dim) throw this.error(`not a ${this.#dim}-d sidx codes file`);
    const got = bytes.readUInt32LE(12);
    if (got !== this.#format.param) throw this.error(`written with ${this.#format.paramName} ${got}, this store uses ${this.#format.param}`);
    const need = this.header + slots * this.#format.codeSize;
    if (size < need) throw this.error(`${size} bytes, the slot file's ${slots} slots need ${need}`);
    ftruncateSync(this.#fd, need);
    return bytes.subarray(PREFIX);
  }

  /**
   * Extends the file with zeros to hold codes for `slots` slots (rows never written: free slots, which a load releases),
   * so that a load does not refuse it as short.
   */
  cover(slots: number): void {
    const need = this.header + slots * this.#format.codeSize;
    if (this.size < need) ftruncateSync(this.#fd, need);
  }

  /** Empties the file (not trained). */
  truncate(): void {
    ftruncateSync(this.#fd, 0);
  }

  /** Writes codes (row i for slots[i]), one write per run of consecutive slots. */
  write(slots: Int32Array, codes: Uint8Array): void {
    const size = this.#format.codeSize;
    let run = 0;
    for (let i = 1; i <= slots.length; i++) {
      if (i < slots.length && slots[i] === slots[i - 1]! + 1) continue;
      writeFully(this.#fd, codes.subarray(run * size, i * size), this.header + slots[run]! * size);
      run = i;
    }
  }

  /** Slots 0 .. count-1 read into `codes` on the libuv pool, through a descriptor of its own (a close meanwhile cannot hand the number to another file). */
  async readInto(codes: NativeCodes, count: number): Promise<void> {
    const fd = openSync(this.#path, 'r');
    try {
      await callNativeAsync(() => codes.readFromAsync(fd, this.header, count));
    } finally {
      closeSync(fd);
    }
  }

  /** Everything written before the call is durable when it resolves (libuv pool). */
  async datasync(): Promise<void> {
    await fdatasyncAsync(this.#fd).catch((err: Error) => {
      throw this.error(`fdatasync failed: ${err.message}`, 'SIDX_ERR_VECTOR');
    });
  }

  /** fdatasync, then the header (see above); every step on this thread. */
  writeHeader(payload: Uint8Array): void {
    fdatasyncSync(this.#fd);
    writeFully(this.#fd, payload, PREFIX);
    fdatasyncSync(this.#fd);
    writeFully(this.#fd, this.#prefix(), 0);
    fdatasyncSync(this.#fd);
  }

  /** `writeHeader` with the fdatasyncs on the libuv pool; stops after the step where `live()` turned false. */
  async writeHeaderAsync(payload: Uint8Array, live: () => boolean): Promise<void> {
    await this.datasync();
    if (!live()) return;
    writeFully(this.#fd, payload, PREFIX);
    await this.datasync();
    if (!live()) return;
    writeFully(this.#fd, this.#prefix(), 0);
    await this.datasync();
  }

  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  error(message: string, code: 'SIDX_ERR_STORE' | 'SIDX_ERR_VECTOR' = 'SIDX_ERR_STORE'): SidxError {
    return new SidxError(code, `${this.#format.name} codes file: ${message}`);
  }

  #prefix(): Buffer {
    const prefix = Buffer.alloc(PREFIX);
    this.#format.magic.copy(prefix, 0);
    prefix.writeUInt32LE(this.#dim, 8);
    prefix.writeUInt32LE(this.#format.param, 12);
    return prefix;
  }
}
