/**
 * The SID trie wire format of GET /v1/sids/trie (docs/sid-trie.md), little-endian:
 *
 *   offset  size  field
 *   0       4     magic "SIDT"
 *   4       1     format version (1)
 *   5       1     L, levels
 *   6       1     code bytes (2: codes are u16 in this catalog)
 *   7       1     kind: 0 full snapshot, 1 delta
 *   8       8     seq (u64): the catalog change sequence the answer reflects
 *   16      8     since (u64): the seq a delta starts after (0 for a full snapshot)
 *   24      4     nAdded (u32): full: the number of occupied SIDs
 *   28      4     nRemoved (u32): 0 for a full snapshot
 *   32      ...   nAdded × L codes, then nRemoved × L codes; SIDs in lexicographic code order
 */
import { SidxError } from '../errors.ts';

export const TRIE_MAGIC = 'SIDT';
export const TRIE_FORMAT_VERSION = 1;
export const TRIE_HEADER_BYTES = 32;
export const TRIE_KIND_FULL = 0;
export const TRIE_KIND_DELTA = 1;
const CODE_BYTES = 2;

export interface TrieMessage {
  levels: number;
  kind: 'full' | 'delta';
  seq: bigint;
  /** 0n for a full snapshot. */
  since: bigint;
  /** Flat n × L codes: every occupied SID (full) or those that became occupied (delta). */
  added: Uint16Array;
  /** Flat n × L codes that became empty (delta; empty for a full snapshot). */
  removed: Uint16Array;
}

/** The binary form of a trie message (one allocation; codes copied in host order, which is little-endian). */
export function encodeTrie(m: TrieMessage): Buffer {
  const L = m.levels;
  const out = Buffer.allocUnsafe(TRIE_HEADER_BYTES + CODE_BYTES * (m.added.length + m.removed.length));
  out.write(TRIE_MAGIC, 0, 'latin1');
  out[4] = TRIE_FORMAT_VERSION;
  out[5] = L;
  out[6] = CODE_BYTES;
  out[7] = m.kind === 'full' ? TRIE_KIND_FULL : TRIE_KIND_DELTA;
  out.writeBigUInt64LE(m.seq, 8);
  out.writeBigUInt64LE(m.since, 16);
  out.writeUInt32LE(m.added.length / L, 24);
  out.writeUInt32LE(m.removed.length / L, 28);
  const codes = new Uint16Array(out.buffer, out.byteOffset + TRIE_HEADER_BYTES, m.added.length + m.removed.length);
  codes.set(m.added);
  codes.set(m.removed, m.added.length);
  return out;
}

function bad(message: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', `SID trie: ${message}`, { field: 'trie' });
}

/** Parses the binary form (e.g. a response body; 2-byte codes, the only kind this catalog writes); codes are copied out. */
export function decodeTrie(buf: Uint8Array): TrieMessage {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < TRIE_HEADER_BYTES || b.toString('latin1', 0, 4) !== TRIE_MAGIC) throw bad('no SIDT header');
  if (b[4] !== TRIE_FORMAT_VERSION) throw bad(`format version ${b[4]} is not supported`);
  const L = b[5]!;
  const codeBytes = b[6]!;
  if (L < 1) throw bad(`levels ${L}`);
  if (codeBytes !== CODE_BYTES) throw bad(`${codeBytes}-byte codes are not supported by this decoder`);
  const nAdded = b.readUInt32LE(24);
  const nRemoved = b.readUInt32LE(28);
  const n = (nAdded + nRemoved) * L;
  if (b.length !== TRIE_HEADER_BYTES + n * CODE_BYTES) throw bad(`${b.length} bytes, header says ${TRIE_HEADER_BYTES + n * CODE_BYTES}`);
  const codes = new Uint16Array(n);
  for (let i = 0; i < n; i++) codes[i] = b.readUInt16LE(TRIE_HEADER_BYTES + 2 * i);
  return {
    levels: L,
    kind: b[7] === TRIE_KIND_FULL ? 'full' : 'delta',
    seq: b.readBigUInt64LE(8),
    since: b.readBigUInt64LE(16),
    added: codes.subarray(0, nAdded * L),
    removed: codes.subarray(nAdded * L),
  };
}
