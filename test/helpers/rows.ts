/**
 * Stands in for the catalog in tests of the vector stores: writes vectors to rows of a vector file the way
 * src/store/catalog-vectors.ts does (lowest free row first, else appended; copy-on-write, so a rewrite gets a new
 * row and the old one is released by the caller), and returns the rows to hand to `store.put`.
 */
import { VectorFile } from '../../src/vector/vector-file.ts';

export class RowWriter {
  readonly file: VectorFile;
  #next: number;
  #free: number[] = [];

  constructor(path: string, dim: number) {
    this.file = VectorFile.open(path, dim);
    this.#next = this.file.rows;
  }

  /** Rows for `vectors.length / dim` vectors, written. */
  write(vectors: Float32Array): Uint32Array {
    const n = vectors.length / this.file.dim;
    this.#free.sort((a, b) => b - a);
    const slots = Uint32Array.from({ length: n }, () => (this.#free.length > 0 ? this.#free.pop()! : this.#next++));
    this.file.write(slots, vectors);
    return slots;
  }

  release(slots: ArrayLike<number>): void {
    for (let i = 0; i < slots.length; i++) this.#free.push(slots[i]!);
  }

  close(): void {
    this.file.close();
  }
}
