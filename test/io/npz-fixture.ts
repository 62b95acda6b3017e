/**
 * Test fixtures for .npz: a .npy encoder for any dtype and a tiny zip writer (stored or deflated members, optional
 * zip64 records laid out the way NumPy/Python's zipfile write them), so the npz tests need nothing but Node.
 */
import { crc32, deflateRawSync } from 'node:zlib';

/** .npy v1.0 bytes with header `descr` and `shape` around the raw little-endian `payload`. */
export function npyBytes(descr: string, shape: readonly number[], payload: Uint8Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, total - 10, true);
  const text = dict.padEnd(total - 11, ' ') + '\n';
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  out.set(payload, total);
  return out;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function npyOf(a: Float32Array | Float64Array | BigInt64Array | Int32Array, shape: readonly number[]): Uint8Array {
  const descr = a instanceof Float32Array ? '<f4' : a instanceof Float64Array ? '<f8' : a instanceof BigInt64Array ? '<i8' : '<i4';
  return npyBytes(descr, shape, bytesOf(a));
}

/** float16 .npy from float16 bit patterns. */
export function npyHalf(bits: Uint16Array, shape: readonly number[]): Uint8Array {
  return npyBytes('<f2', shape, bytesOf(bits));
}

/** A 0-d object array holding a pickled empty dict, as np.savez writes a Python dict. */
export function npyPickledDict(): Uint8Array {
  return npyBytes('|O', [], Uint8Array.from([0x80, 0x04, 0x7d, 0x94, 0x2e]));
}

export interface ZipMember {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/** A zip archive of the members. `zip64`: zip64 extra fields in every header and zip64 end records. */
export function zipBytes(members: readonly ZipMember[], options: { zip64?: boolean } = {}): Uint8Array {
  const z64 = options.zip64 === true;
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const body = m.deflate ? deflateRawSync(m.data) : m.data;
    const crc = crc32(m.data);
    const extra = Buffer.alloc(z64 ? 28 : 0);
    if (z64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(m.data.length), 4);
      extra.writeBigUInt64LE(BigInt(body.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(z64 ? 45 : 20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(m.deflate ? 8 : 0, 8);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(z64 ? 0xffffffff : body.length, 18);
    local.writeUInt32LE(z64 ? 0xffffffff : m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(z64 ? 20 : 0, 28);
    const localExtra = Buffer.from(extra.subarray(0, z64 ? 20 : 0));
    if (z64) localExtra.writeUInt16LE(16, 2);
    parts.push(local, name, localExtra, body);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(z64 ? 45 : 20, 4);
    cd.writeUInt16LE(z64 ? 45 : 20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(m.deflate ? 8 : 0, 10);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(z64 ? 0xffffffff : body.length, 20);
    cd.writeUInt32LE(z64 ? 0xffffffff : m.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt16LE(extra.length, 30);
    cd.writeUInt32LE(z64 ? 0xffffffff : offset, 42);
    central.push(cd, name, extra);
    offset += 30 + name.length + (z64 ? 20 : 0) + body.length;
  }
  const cdBytes = Buffer.concat(central);
  const tail: Uint8Array[] = [cdBytes];
  const count = members.length;
  if (z64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(count), 24);
    rec.writeBigUInt64LE(BigInt(count), 32);
    rec.writeBigUInt64LE(BigInt(cdBytes.length), 40);
    rec.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(rec, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(z64 ? 0xffff : count, 8);
  eocd.writeUInt16LE(z64 ? 0xffff : count, 10);
  eocd.writeUInt32LE(z64 ? 0xffffffff : cdBytes.length, 12);
  eocd.writeUInt32LE(z64 ? 0xffffffff : offset, 16);
  tail.push(eocd);
  return Buffer.concat([...parts, ...tail]);
}
