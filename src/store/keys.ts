/** Byte helpers shared by the LMDB catalog: u64 big-endian internal keys and seqs, prefix range ends. */
import { endianness } from 'node:os';
import { SidxError } from '../errors.ts';

export const U64_BYTES = 8;
/** Internal keys are FAISS int64 labels: 0 ≤ key < 2^63 (-1 is FAISS's "no result"). */
export const MAX_INTERNAL_KEY = (1n << 63n) - 1n;

// Record values and the BigInt64Array fast path below assume a little-endian host (x86-64, arm64).
export const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

export function assertInternalKey(key: bigint, field = 'key'): void {
  if (typeof key !== 'bigint' || key < 0n || key > MAX_INTERNAL_KEY) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `internal key must be a bigint in 0..2^63-1, got ${String(key)}`, { field });
  }
}

export function writeU64BE(out: Uint8Array, offset: number, value: bigint): void {
  const hi = Number(value >> 32n);
  const lo = Number(value & 0xffffffffn);
  out[offset] = hi >>> 24;
  out[offset + 1] = (hi >>> 16) & 0xff;
  out[offset + 2] = (hi >>> 8) & 0xff;
  out[offset + 3] = hi & 0xff;
  out[offset + 4] = lo >>> 24;
  out[offset + 5] = (lo >>> 16) & 0xff;
  out[offset + 6] = (lo >>> 8) & 0xff;
  out[offset + 7] = lo & 0xff;
}

export function u64Key(value: bigint): Buffer {
  const out = Buffer.allocUnsafe(U64_BYTES);
  writeU64BE(out, 0, value);
  return out;
}

/** A reusable key in u64Key's layout: `view.setBigUint64(0, key)` (big-endian) rewrites `bytes` without a bigint shift. */
export function keyScratch(): { bytes: Buffer; view: DataView } {
  const bytes = Buffer.alloc(U64_BYTES);
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, U64_BYTES) };
}

function readU32BE(buf: Uint8Array, offset: number): number {
  return ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
}

export function readU64BE(buf: Uint8Array, offset: number): bigint {
  return (BigInt(readU32BE(buf, offset)) << 32n) | BigInt(readU32BE(buf, offset + 4));
}

/** Most scans return a handful of keys (one SID cell): start small, grow by doubling. */
const INITIAL_KEYS = 16;

/**
 * Appends keys to a growable BigInt64Array without creating a bigint per entry: the big-endian bytes are
 * copied, reversed, into the host-order (little-endian) bytes of the array.
 */
export class KeyCollector {
  #keys: BigInt64Array;
  #bytes: Uint8Array;
  #length = 0;

  /** `initial`: the first allocation, at most `capacityHint` (default: small, for scans of one SID cell). */
  constructor(capacityHint: number, initial = INITIAL_KEYS) {
    this.#keys = new BigInt64Array(Math.max(1, Math.min(capacityHint, initial)));
    this.#bytes = new Uint8Array(this.#keys.buffer);
  }

  get length(): number {
    return this.#length;
  }

  /** Adds the u64 BE key stored at buf[offset..offset+8). */
  pushU64BE(buf: Uint8Array, offset: number): void {
    if (this.#length === this.#keys.length) {
      const grown = new BigInt64Array(this.#keys.length * 2);
      grown.set(this.#keys);
      this.#keys = grown;
      this.#bytes = new Uint8Array(grown.buffer);
    }
    const b = this.#bytes;
    const p = this.#length * U64_BYTES;
    for (let j = 0; j < U64_BYTES; j++) b[p + j] = buf[offset + U64_BYTES - 1 - j];
    this.#length++;
  }

  /** An exact-length copy. */
  toArray(): BigInt64Array {
    return this.#keys.slice(0, this.#length);
  }
}

/** The smallest key greater than every key starting with `prefix`, or undefined if there is none (all 0xff). */
export function prefixEnd(prefix: Uint8Array): Buffer | undefined {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  if (n === 0) return undefined;
  const end = Buffer.from(prefix.subarray(0, n));
  end[n - 1]++;
  return end;
}
