/**
 * NumPy `.npz` reader: a zip of `.npy` members, stored (`np.savez`) or deflated (`np.savez_compressed`), zip64
 * included. Members are streamed out of the archive straight into their typed arrays (float32 / int64 / int32 land
 * in the returned array's own buffer, no intermediate copy), so peak memory is the arrays plus a 1 MiB chunk.
 *
 * dtypes: little-endian float32 / float16 / float64 -> Float32Array, int64 -> BigInt64Array, int32 -> Int32Array,
 * any shape, C order. Object arrays (dtype `O`: a pickled Python object, e.g. a dict saved with `np.savez`) cannot
 * be read without a pickle reader: listing shows them as dtype 'object', reading one is a clear error. Zip members
 * not ending in `.npy` are ignored. Errors: SIDX_ERR_INVALID_INPUT naming the file and the array.
 */
import { endianness } from 'node:os';
import { inputError, ioError } from './input-error.ts';
import { ZipReader, type ZipEntry } from './zip-reader.ts';
import { halfToFloatTable } from './npy.ts';

export type NpzFloatDType = 'float32' | 'float16' | 'float64';
export type NpzDType = NpzFloatDType | 'int64' | 'int32';

export type NpzArray =
  | { dtype: NpzFloatDType; shape: number[]; data: Float32Array }
  | { dtype: 'int64'; shape: number[]; data: BigInt64Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array };

export interface NpzMemberInfo {
  /** Array name (the member's file name without `.npy`). */
  name: string;
  dtype: NpzDType | 'object';
  shape: number[];
  /** true when the member is deflated (`np.savez_compressed`). */
  compressed: boolean;
}

export interface ReadNpzOptions {
  /** Read only these arrays (each must exist); default: every `.npy` member. */
  only?: readonly string[];
}

interface MemberHeader {
  dtype: NpzDType | 'object';
  itemSize: number;
  shape: number[];
  count: number;
  dataOffset: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
const KINDS: Record<string, { dtype: NpzDType; size: number }> = {
  f4: { dtype: 'float32', size: 4 }, f2: { dtype: 'float16', size: 2 }, f8: { dtype: 'float64', size: 8 },
  i8: { dtype: 'int64', size: 8 }, i4: { dtype: 'int32', size: 4 },
};
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function arrayError(path: string, name: string, msg: string): Error {
  return inputError(path, `array '${name}': ${msg}`);
}

/** Why an object-dtype member cannot be read (also used by callers that offer a way around it). */
export const PICKLED = 'has dtype object, i.e. a pickled Python object (e.g. a dict saved with np.savez); '
  + 'sidx cannot read Python pickles';

function pickleError(path: string, name: string): Error {
  return arrayError(path, name, PICKLED);
}

/** Parses the .npy header once enough bytes are there; null while more bytes are needed. */
function tryParseHeader(head: Uint8Array, path: string, name: string): MemberHeader | null {
  if (head.length < 10) return null;
  if (MAGIC.some((b, i) => head[i] !== b)) throw arrayError(path, name, 'member is not a .npy array (bad magic)');
  const major = head[6]!;
  if (major < 1 || major > 3) throw arrayError(path, name, `unsupported .npy format version ${major}.${head[7]}`);
  const prefix = major === 1 ? 10 : 12;
  if (head.length < prefix) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const textLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (head.length < prefix + textLength) return null;
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(head.subarray(prefix, prefix + textLength));
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw arrayError(path, name, `malformed .npy header ${JSON.stringify(text.trim())}`);
  }
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : Number.NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw arrayError(path, name, `malformed shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataOffset = prefix + textLength;
  if (/^[|<>=]?O\d*$/.test(descr)) return { dtype: 'object', itemSize: 0, shape, count, dataOffset };
  const kind = KINDS[descr.slice(1)];
  if (kind === undefined || (descr[0] !== '<' && !(descr[0] === '=' && LITTLE_ENDIAN_HOST))) {
    throw arrayError(path, name, `unsupported dtype '${descr}' (supported: little-endian <f4, <f2, <f8, <i8, <i4)`);
  }
  if (fortran === 'True' && shape.filter((d) => d !== 1).length > 1) {
    throw arrayError(path, name, 'fortran_order arrays are not supported (save with C order)');
  }
  return { dtype: kind.dtype, itemSize: kind.size, shape, count, dataOffset };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The output array for a header, and the bytes the member data is copied into (the output's own, if possible). */
function allocate(h: MemberHeader): { array: NpzArray; target: Uint8Array; direct: boolean } {
  const { shape, count } = h;
  const array: NpzArray = h.dtype === 'int64' ? { dtype: 'int64', shape, data: new BigInt64Array(count) }
    : h.dtype === 'int32' ? { dtype: 'int32', shape, data: new Int32Array(count) }
      : { dtype: h.dtype as NpzFloatDType, shape, data: new Float32Array(count) };
  const direct = LITTLE_ENDIAN_HOST && h.dtype !== 'float16' && h.dtype !== 'float64';
  const target = direct ? new Uint8Array(array.data.buffer) : new Uint8Array(count * h.itemSize);
  return { array, target, direct };
}

/** Little-endian raw element bytes -> the output array (for float16/float64, and on big-endian hosts). */
function convert(raw: Uint8Array, array: NpzArray): void {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const n = array.data.length;
  if (array.dtype === 'int64') {
    const out = array.data;
    for (let i = 0; i < n; i++) out[i] = view.getBigInt64(8 * i, true);
  } else if (array.dtype === 'int32') {
    const out = array.data;
    for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
  } else if (array.dtype === 'float16') {
    const out = array.data;
    const t = halfToFloatTable();
    for (let i = 0; i < n; i++) out[i] = t[view.getUint16(2 * i, true)]!;
  } else if (array.dtype === 'float64') {
    const out = array.data;
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
  } else {
    const out = array.data;
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  }
}

async function readHeader(zip: ZipReader, entry: ZipEntry, name: string): Promise<MemberHeader> {
  let head: Uint8Array = new Uint8Array(0);
  for await (const chunk of zip.chunks(entry)) {
    head = concat(head, chunk);
    const h = tryParseHeader(head, zip.path, name);
    if (h) return h;
  }
  throw arrayError(zip.path, name, 'truncated .npy header');
}

async function readMember(zip: ZipReader, entry: ZipEntry, name: string): Promise<NpzArray> {
  let head: Uint8Array = new Uint8Array(0);
  let h: MemberHeader | null = null;
  let out: ReturnType<typeof allocate> | null = null;
  let filled = 0;
  for await (const chunk of zip.chunks(entry)) {
    let data = chunk;
    if (!out) {
      head = concat(head, chunk);
      h = tryParseHeader(head, zip.path, name);
      if (!h) continue;
      if (h.dtype === 'object') throw pickleError(zip.path, name);
      try {
        out = allocate(h);
      } catch (err) {
        throw arrayError(zip.path, name, `shape (${h.shape.join(', ')}) is too large to hold in memory (${(err as Error).message})`);
      }
      data = head.subarray(h.dataOffset);
      head = new Uint8Array(0);
    }
    if (filled + data.length > out.target.length) {
      throw arrayError(zip.path, name, `unexpected bytes after the data of shape (${h!.shape.join(', ')}) ${h!.dtype}`);
    }
    out.target.set(data, filled);
    filled += data.length;
  }
  if (!h || !out) throw arrayError(zip.path, name, 'truncated .npy header');
  if (filled < out.target.length) {
    throw arrayError(zip.path, name,
      `truncated data: shape (${h.shape.join(', ')}) ${h.dtype} needs ${out.target.length} bytes, member has ${filled}`);
  }
  if (!out.direct) convert(out.target, out.array);
  return out.array;
}

async function withZip<T>(path: string, fn: (zip: ZipReader, arrays: Map<string, ZipEntry>) => Promise<T>): Promise<T> {
  const zip = await ZipReader.open(path);
  try {
    const arrays = new Map<string, ZipEntry>();
    for (const e of zip.entries) if (e.name.endsWith('.npy')) arrays.set(e.name.slice(0, -4), e);
    return await fn(zip, arrays);
  } catch (err) {
    throw ioError(path, err);
  } finally {
    await zip.close();
  }
}

/** Names, dtypes and shapes of the arrays in an .npz, reading only each member's header. */
export async function listNpz(path: string): Promise<NpzMemberInfo[]> {
  return withZip(path, async (zip, arrays) => {
    const out: NpzMemberInfo[] = [];
    for (const [name, entry] of arrays) {
      const h = await readHeader(zip, entry, name);
      out.push({ name, dtype: h.dtype, shape: h.shape, compressed: entry.method === 8 });
    }
    return out;
  });
}

/** Reads the arrays of an .npz (all, or `options.only`), in archive order. */
export async function readNpz(path: string, options: ReadNpzOptions = {}): Promise<Map<string, NpzArray>> {
  return withZip(path, async (zip, arrays) => {
    const names = options.only ?? [...arrays.keys()];
    const missing = names.filter((name) => !arrays.has(name));
    if (missing.length > 0) {
      throw inputError(path, `missing array${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} `
        + `(the archive has: ${[...arrays.keys()].join(', ') || 'no .npy members'})`);
    }
    const out = new Map<string, NpzArray>();
    for (const name of names) out.set(name, await readMember(zip, arrays.get(name)!, name));
    return out;
  });
}
