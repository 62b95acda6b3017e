/**
 * NumPy `.npy` reader/writer for embedding matrices.
 *
 * Reads format versions 1.0, 2.0 and 3.0; dtypes float32 / float16 / float64, little-endian ('<' or '|' byte order
 * marks), C order, 1-D or 2-D. Data always comes back as a Float32Array owning exactly its own ArrayBuffer (safe
 * to transfer to a worker). float32 files are read straight into that buffer, no intermediate copy.
 * Every error is a SidxError SIDX_ERR_INVALID_INPUT whose message names the file and `field` is the file path.
 */
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { endianness } from 'node:os';
import { SidxError } from '../errors.ts';

export type NpyDType = 'float32' | 'float16' | 'float64';
export interface NpyArray {
  shape: number[];
  data: Float32Array;
  /** The dtype stored in the file (data is always converted to float32). */
  dtype: NpyDType;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const DTYPES: Record<string, { dtype: NpyDType; size: number }> = {
  f4: { dtype: 'float32', size: 4 }, f2: { dtype: 'float16', size: 2 }, f8: { dtype: 'float64', size: 8 },
};

interface Header {
  dtype: NpyDType;
  itemSize: number;
  shape: number[];
  count: number;
  dataOffset: number;
}

function fail(source: string, msg: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', `${source}: ${msg}`, { field: source });
}

/** Bytes the header needs before it can be parsed: 10 for v1, 12 for v2/v3, then the header text. */
function headerLength(bytes: Uint8Array, source: string): { textStart: number; textLength: number } {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail(source, 'not a .npy file (bad magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1) return { textStart: 10, textLength: view.getUint16(8, true) };
  if (major === 2 || major === 3) {
    if (bytes.length < 12) throw fail(source, 'truncated header');
    return { textStart: 12, textLength: view.getUint32(8, true) };
  }
  throw fail(source, `unsupported .npy format version ${major}.${bytes[7]}`);
}

function parseHeaderText(text: string, source: string, dataOffset: number): Header {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw fail(source, `malformed header ${JSON.stringify(text.trim())}`);
  }
  if (fortran === 'True') throw fail(source, 'fortran_order arrays are not supported (save with C order)');
  const order = descr[0];
  const kind = DTYPES[descr.slice(1)];
  if (kind === undefined || (order !== '<' && order !== '|') || (order === '|' && kind.size > 1)) {
    throw fail(source, `unsupported dtype '${descr}' (supported: little-endian <f4, <f2, <f8)`);
  }
  const parts = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const shape = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw fail(source, `malformed shape (${shapeText})`);
  if (shape.length < 1 || shape.length > 2) {
    throw fail(source, `expected a 1-D or 2-D array, got shape (${shape.join(', ')})`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype: kind.dtype, itemSize: kind.size, shape, count, dataOffset };
}

function parseHeader(bytes: Uint8Array, source: string): Header {
  const { textStart, textLength } = headerLength(bytes, source);
  if (bytes.length < textStart + textLength) throw fail(source, 'truncated header');
  const text = new TextDecoder(bytes[6] === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(textStart, textStart + textLength));
  return parseHeaderText(text, source, textStart + textLength);
}

let halfTable: Float32Array | undefined;
/** float16 bit pattern -> float32, all 65536 values precomputed once (256 KiB). */
export function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    halfTable[h] = exp === 0 ? sign * frac * 2 ** -24
      : exp === 31 ? (frac ? NaN : sign * Infinity)
        : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return halfTable;
}

/** Converts raw little-endian element bytes of `dtype` into `out`. */
function convert(raw: Uint8Array, dtype: NpyDType, out: Float32Array): void {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const n = out.length;
  if (dtype === 'float16') {
    const t = halfToFloatTable();
    for (let i = 0; i < n; i++) out[i] = t[view.getUint16(2 * i, true)]!;
  } else if (dtype === 'float64') {
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
  } else {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  }
}

function checkSize(h: Header, available: number, source: string): void {
  const need = h.count * h.itemSize;
  if (available < need) {
    throw fail(source, `truncated data: shape (${h.shape.join(', ')}) ${h.dtype} needs ${need} bytes, file has ${available}`);
  }
  if (available > need) throw fail(source, `${available - need} unexpected bytes after the array data`);
}

/** Parses .npy bytes already in memory (e.g. one member of an .npz); `source` names it in errors. */
export function parseNpy(bytes: Uint8Array, source = '<buffer>'): NpyArray {
  const h = parseHeader(bytes, source);
  checkSize(h, bytes.length - h.dataOffset, source);
  const data = new Float32Array(h.count);
  const raw = bytes.subarray(h.dataOffset, h.dataOffset + h.count * h.itemSize);
  if (h.dtype === 'float32' && endianness() === 'LE') new Uint8Array(data.buffer).set(raw);
  else convert(raw, h.dtype, data);
  return { shape: h.shape, data, dtype: h.dtype };
}

/** Reads a .npy file. float32 data is read directly into the returned array's buffer. */
export async function readNpy(path: string): Promise<NpyArray> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: cannot open (${(err as Error).message})`,
      { field: path, cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const head = new Uint8Array(Math.min(size, 12));
    await fh.read(head, 0, head.length, 0);
    const { textStart, textLength } = headerLength(head, path);
    const headerBytes = new Uint8Array(Math.min(size, textStart + textLength));
    await fh.read(headerBytes, 0, headerBytes.length, 0);
    const h = parseHeader(headerBytes, path);
    checkSize(h, size - h.dataOffset, path);
    const data = new Float32Array(h.count);
    const nbytes = h.count * h.itemSize;
    const direct = h.dtype === 'float32' && endianness() === 'LE';
    const target = direct ? new Uint8Array(data.buffer) : new Uint8Array(nbytes);
    let done = 0;
    while (done < nbytes) {
      const { bytesRead } = await fh.read(target, done, Math.min(nbytes - done, 1 << 30), h.dataOffset + done);
      if (bytesRead === 0) throw fail(path, `truncated data: read ${done} of ${nbytes} bytes`);
      done += bytesRead;
    }
    if (!direct) convert(target, h.dtype, data);
    return { shape: h.shape, data, dtype: h.dtype };
  } finally {
    await fh.close();
  }
}

/** Encodes a float32 array as .npy v1.0 bytes (v2.0 if the header would not fit in 65535 bytes). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.length === 0 || shape.some((d) => !Number.isSafeInteger(d) || d < 0) || count !== data.length) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `shape (${shape.join(', ')}) does not match ${data.length} values`,
      { field: 'shape' });
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = prefix === 10 ? 1 : 2;
  const view = new DataView(out.buffer);
  if (prefix === 10) view.setUint16(8, total - prefix, true);
  else view.setUint32(8, total - prefix, true);
  const text = dict.padEnd(total - prefix - 1, ' ') + '\n';
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  if (endianness() === 'LE') out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  else for (let i = 0; i < data.length; i++) view.setFloat32(total + 4 * i, data[i]!, true);
  return out;
}

/** Writes a float32 .npy file atomically (temporary name in the same directory, then rename). */
export async function writeNpy(path: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const bytes = encodeNpy(data, shape);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
