/**
 * Minimal read-only zip archive access, enough for NumPy `.npz` files: the central directory (zip64 included, which
 * NumPy always writes into local headers since gh-10776), members stored (method 0) or deflated (method 8), read
 * with positional reads and streamed (never the whole archive in memory). Each member's size and CRC-32 are checked
 * when it is read to the end. Not supported, with a clear error: encryption, other compression methods, multi-disk
 * archives. Errors are SIDX_ERR_INVALID_INPUT naming the archive (and the member).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { inputError, ioError } from './input-error.ts';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const CHUNK = 1 << 20;
const MAX_COMMENT = 0xffff;

let crcTable: Int32Array | undefined;
/** CRC-32 (zip polynomial), incremental; zlib.crc32 where the runtime has it (Node >= 20.15). */
function crc32(data: Uint8Array, prev: number): number {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(data, prev);
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~prev;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function u64(view: DataView, at: number): number {
  const v = view.getBigUint64(at, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

export class ZipReader {
  readonly path: string;
  readonly entries: readonly ZipEntry[];
  readonly #fh: FileHandle;
  readonly #size: number;

  private constructor(path: string, fh: FileHandle, size: number, entries: ZipEntry[]) {
    this.path = path;
    this.#fh = fh;
    this.#size = size;
    this.entries = entries;
  }

  /** Opens the archive and reads its central directory. Close it with `close()`. */
  static async open(path: string): Promise<ZipReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw ioError(path, err);
    }
    try {
      const size = (await fh.stat()).size;
      const entries = await readDirectory(path, fh, size);
      return new ZipReader(path, fh, size, entries);
    } catch (err) {
      await fh.close();
      throw ioError(path, err);
    }
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }

  /** The member's uncompressed bytes, in chunks of up to 1 MiB (chunks are fresh buffers the caller may keep). */
  async *chunks(entry: ZipEntry): AsyncGenerator<Uint8Array> {
    const start = await this.#dataStart(entry);
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size) throw this.#fail(entry, 'stored member with differing sizes');
      yield* this.#checked(entry, this.#raw(entry, start));
      return;
    }
    const source = Readable.from(this.#raw(entry, start), { objectMode: false });
    const inflater = zlib.createInflateRaw();
    source.on('error', (err) => inflater.destroy(err));
    source.pipe(inflater);
    try {
      yield* this.#checked(entry, inflater as AsyncIterable<Uint8Array>);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) throw this.#fail(entry, `corrupt deflate data (${(err as Error).message})`);
      throw err;
    } finally {
      source.destroy();
      inflater.destroy();
    }
  }

  async *#checked(entry: ZipEntry, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let seen = 0;
    let crc = 0;
    for await (const chunk of chunks) {
      seen += chunk.length;
      if (seen > entry.size) throw this.#fail(entry, `more than the ${entry.size} bytes the directory records`);
      crc = crc32(chunk, crc);
      yield chunk;
    }
    if (seen !== entry.size) throw this.#fail(entry, `truncated: ${seen} of ${entry.size} bytes`);
    if (crc !== entry.crc32) throw this.#fail(entry, 'CRC-32 mismatch (corrupt archive)');
  }

  async *#raw(entry: ZipEntry, start: number): AsyncGenerator<Uint8Array> {
    let done = 0;
    while (done < entry.compressedSize) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, entry.compressedSize - done));
      const { bytesRead } = await this.#fh.read(buf, 0, buf.length, start + done);
      if (bytesRead === 0) throw this.#fail(entry, 'archive ends inside the member data');
      done += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  }

  async #dataStart(entry: ZipEntry): Promise<number> {
    const head = Buffer.alloc(30);
    const { bytesRead } = await this.#fh.read(head, 0, 30, entry.localHeaderOffset);
    if (bytesRead < 30 || head.readUInt32LE(0) !== SIG_LOCAL) throw this.#fail(entry, 'bad local header');
    const start = entry.localHeaderOffset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
    if (start + entry.compressedSize > this.#size) throw this.#fail(entry, 'member data runs past the end of the archive');
    return start;
  }

  #fail(entry: ZipEntry, msg: string): Error {
    return inputError(this.path, `zip member '${entry.name}': ${msg}`);
  }
}

async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const { bytesRead } = await fh.read(buf, done, len - done, pos + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === len ? buf : buf.subarray(0, done);
}

async function readDirectory(path: string, fh: FileHandle, size: number): Promise<ZipEntry[]> {
  const notZip = () => inputError(path, 'not a zip archive (no end-of-central-directory record); expected an .npz');
  if (size < 22) throw notZip();
  const tailStart = Math.max(0, size - 22 - MAX_COMMENT);
  const tail = await readAt(fh, tailStart, size - tailStart);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) { eocd = i; break; }
  }
  if (eocd < 0) throw notZip();
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (tail.readUInt16LE(eocd + 4) !== 0 || tail.readUInt16LE(eocd + 8) !== count) {
    throw inputError(path, 'multi-disk zip archives are not supported');
  }
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === SIG_ZIP64_LOCATOR) {
    const at = u64(new DataView(tail.buffer, tail.byteOffset + eocd - 20, 20), 8);
    const rec = await readAt(fh, at, 56);
    if (rec.length < 56 || rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw inputError(path, 'bad zip64 end-of-directory record');
    const view = new DataView(rec.buffer, rec.byteOffset, 56);
    count = u64(view, 32);
    cdSize = u64(view, 40);
    cdOffset = u64(view, 48);
  }
  if (!Number.isFinite(count) || !Number.isFinite(cdOffset) || cdOffset + cdSize > size) {
    throw inputError(path, 'central directory lies outside the file (truncated archive?)');
  }
  const cd = await readAt(fh, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw inputError(path, `bad central directory entry ${i + 1}`);
    const flags = cd.readUInt16LE(p + 8);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const name = cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
    const entry: ZipEntry = {
      name, method: cd.readUInt16LE(p + 10), crc32: cd.readUInt32LE(p + 16),
      compressedSize: cd.readUInt32LE(p + 20), size: cd.readUInt32LE(p + 24), localHeaderOffset: cd.readUInt32LE(p + 42),
    };
    applyZip64Extra(entry, cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen));
    if (flags & 1) throw inputError(path, `zip member '${name}' is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) {
      throw inputError(path, `zip member '${name}' uses compression method ${entry.method} (only stored and deflate are supported)`);
    }
    if (![entry.size, entry.compressedSize, entry.localHeaderOffset].every(Number.isSafeInteger)) {
      throw inputError(path, `zip member '${name}' has sizes beyond 2^53 bytes`);
    }
    entries.push(entry);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The zip64 extended-information extra field (0x0001) holds, in order, only the fields saturated at 0xFFFFFFFF. */
function applyZip64Extra(entry: ZipEntry, extra: Buffer): void {
  for (let q = 0; q + 4 <= extra.length;) {
    const id = extra.readUInt16LE(q);
    const len = extra.readUInt16LE(q + 2);
    if (id === 0x0001) {
      const view = new DataView(extra.buffer, extra.byteOffset + q + 4, Math.min(len, extra.length - q - 4));
      let at = 0;
      const next = () => { const v = at + 8 <= view.byteLength ? u64(view, at) : Number.NaN; at += 8; return v; };
      if (entry.size === 0xffffffff) entry.size = next();
      if (entry.compressedSize === 0xffffffff) entry.compressedSize = next();
      if (entry.localHeaderOffset === 0xffffffff) entry.localHeaderOffset = next();
      return;
    }
    q += 4 + len;
  }
}
