/**
 * Hamming-1 neighbours through rotated key orders. For a SID of L levels and each position i, the prefix
 * (model, rotation i, the other L-1 codes in rotation i's order) is shared by exactly the stored SIDs that agree
 * with it everywhere except possibly at i; the code at i follows the prefix in the key. So L prefix scans find
 * every existing neighbour, never enumerating the K-1 alternative codes per level.
 */
import { SidxError } from '../errors.ts';
import { assertCodes, SID_KEY_HEADER_BYTES, writeSidKey } from './codec.ts';

export { naturalRotation, rotationOrder, rotationOrders } from './rotation.ts';

/** Number of positions where a and b differ; they must have the same length. */
export function hammingDistance(a: Int32Array, b: Int32Array): number {
  if (a.length !== b.length) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `SIDs have different level counts: ${a.length} and ${b.length}`, {
      field: 'codes',
    });
  }
  let d = 0;
  for (let l = 0; l < a.length; l++) if (a[l] !== b[l]) d++;
  return d;
}

/** Bytes of a Hamming scan prefix for L levels (header + L-1 codes); the code at the free position follows it. */
export function hammingPrefixLength(levels: number): number {
  return SID_KEY_HEADER_BYTES + 2 * (levels - 1);
}

/** The scan prefix for neighbours differing at `position` (key space = rotation `position`). */
export function hammingScanPrefix(model: number, codes: Int32Array, position: number): Buffer {
  const out = Buffer.allocUnsafe(hammingPrefixLength(codes.length));
  writeSidKey(out, 0, model, position, codes, codes.length - 1);
  return out;
}

/** The L scan prefixes of a SID; index i finds the neighbours that differ at position i. */
export function hammingScanPrefixes(model: number, codes: Int32Array): Buffer[] {
  assertCodes(codes);
  const prefixes: Buffer[] = [];
  for (let i = 0; i < codes.length; i++) prefixes.push(hammingScanPrefix(model, codes, i));
  return prefixes;
}

/** The code at the free position of a key found under a scan prefix of `prefixLength` bytes. */
export function freeCodeAfterPrefix(key: Uint8Array, prefixLength: number): number {
  return (key[prefixLength] << 8) | key[prefixLength + 1];
}
