/**
 * Reads the vectors of items by internal key straight from their LMDB records, in place: no copy of the catalog's
 * vectors is kept anywhere else (no in-memory index, no checkpoint file). Each vector is visited as a Float32Array
 * window over the buffer lmdb-js returns (getBinaryFast, the record's bytes from the memory map), copied into a
 * scratch array only when that window is not 4-byte aligned. Reads of one call see one snapshot: lmdb-js renews
 * its read transaction at most once per event-loop turn, and the call is synchronous.
 */
import type { Database } from 'lmdb';
import { SidxError } from '../errors.ts';
import { U64_BYTES } from './keys.ts';
import { recordVectorOffset } from './record.ts';

type Bin = Database<Buffer, Buffer>;

/** Called once per present key: its vector is data[offset..offset+dim), valid only during the call. */
export type VectorVisitor = (position: number, data: Float32Array, offset: number) => void;

export class CatalogVectors {
  #items: Bin;
  #read: <T>(what: string, fn: () => T) => T;
  #key = Buffer.allocUnsafe(U64_BYTES);
  #scratch = new Float32Array(0);
  #scratchBytes = new Uint8Array(0);
  #viewOf: ArrayBufferLike | null = null;
  #view: Float32Array<ArrayBufferLike> = new Float32Array(0);

  constructor(items: Bin, read: <T>(what: string, fn: () => T) => T) {
    this.#items = items;
    this.#read = read;
  }

  /**
   * Visits the vector of each of `keys` (internal keys, in their order; absent keys are skipped) and returns how
   * many were present. `dim` is the catalog's dimension; a record of another length is reported as corrupt.
   */
  forEach(keys: BigInt64Array, dim: number, visit: VectorVisitor): number {
    return this.#read('vectors', () => {
      if (this.#scratch.length < dim) {
        this.#scratch = new Float32Array(dim);
        this.#scratchBytes = new Uint8Array(this.#scratch.buffer);
      }
      const keyBytes = new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength);
      const key = this.#key;
      let found = 0;
      for (let i = 0; i < keys.length; i++) {
        // BigInt64Array holds host-order (little-endian) bytes; LMDB keys are big-endian: no bigint is made.
        for (let b = 0; b < U64_BYTES; b++) key[b] = keyBytes[i * U64_BYTES + U64_BYTES - 1 - b]!;
        const buf = this.#items.getBinaryFast(key);
        if (buf === undefined) continue;
        const v = recordVectorOffset(buf, dim);
        if (v < 0) throw new SidxError('SIDX_ERR_STORE', `corrupt item record: ${buf.length} bytes for a ${dim}-d vector`);
        const start = buf.byteOffset + v;
        if ((start & 3) === 0) {
          if (buf.buffer !== this.#viewOf) {
            this.#viewOf = buf.buffer;
            this.#view = new Float32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
          }
          visit(i, this.#view, start >>> 2);
        } else {
          this.#scratchBytes.set(buf.subarray(v, v + 4 * dim));
          visit(i, this.#scratch, 0);
        }
        found++;
      }
      return found;
    });
  }
}
