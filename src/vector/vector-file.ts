/**
 * The catalog's vectors (schema 4): `vectors.f32` beside data.mdb, row s at byte s * 4 * dim, dim x float32 LE,
 * the only copy of each vector. Rows are written before the LMDB transaction whose records name them commits, and
 * synced first (catalog-vectors.ts has the write order); a row is rewritten only once no committed record names it.
 * Readers: the catalog (pread, one call per run of consecutive rows) and the rerank, which maps the file
 * (vector/vector-store.ts).
 */
import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, openSync, readSync, write, writeSync } from 'node:fs';
import { SidxError } from '../errors.ts';

export const VECTOR_FILE = 'vectors.f32';

export class VectorFile {
  readonly path: string;
  readonly dim: number;
  #fd: number;

  private constructor(path: string, dim: number, fd: number) {
    this.path = path;
    this.dim = dim;
    this.#fd = fd;
  }

  /** Opens (creating it if missing) the file of `dim`-d rows at `path`. */
  static open(path: string, dim: number): VectorFile {
    if (!Number.isSafeInteger(dim) || dim < 1) throw new SidxError('SIDX_ERR_INVALID_INPUT', `dim must be a positive integer, got ${dim}`, { field: 'dim' });
    return new VectorFile(path, dim, openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644));
  }

  /** Whole rows in the file. */
  get rows(): number {
    return Math.floor(fstatSync(this.#live()).size / (4 * this.dim));
  }

  /** Writes row i of `vectors` at slots[i] (page cache; `datasync` makes it durable). */
  write(slots: ArrayLike<number>, vectors: Float32Array): void {
    this.#writeRuns(slots, vectors, writeFully);
  }

  /**
   * `write` on the libuv pool: one pwrite per run of consecutive slots, all issued at once (they touch distinct rows).
   * The kernel's copy into the page cache was a quarter of the event loop's time in `sidx index`. `vectors` must not
   * change until it resolves.
   */
  writeAsync(slots: ArrayLike<number>, vectors: Float32Array): Promise<void> {
    const writes: Promise<void>[] = [];
    this.#writeRuns(slots, vectors, (fd, bytes, at) => writes.push(writeFullyAsync(fd, bytes, at)));
    // Settles only once every write has: a caller that frees the rows after a failure must not race a write still running.
    return Promise.allSettled(writes).then((done) => {
      const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
      if (failed) throw failed.reason;
    });
  }

  /** Reads the rows of `slots` into `into` (slots.length x dim). */
  read(slots: ArrayLike<number>, into: Float32Array = new Float32Array(slots.length * this.dim)): Float32Array {
    const bytes = new Uint8Array(into.buffer, into.byteOffset, slots.length * 4 * this.dim);
    const fd = this.#live();
    forRuns(slots, this.dim, (row, end, at) => readFully(fd, bytes.subarray(row, end), at));
    return into;
  }

  /** Everything written before the call is on disk when it returns. */
  datasync(): void {
    fdatasyncSync(this.#live());
  }

  /** `datasync` on the libuv pool: everything written before the call is on disk when it resolves. */
  datasyncAsync(): Promise<void> {
    return fdatasyncAsync(this.#live());
  }

  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Checks that `vectors` holds one row per slot and hands each run of consecutive slots' bytes to `write`. */
  #writeRuns(slots: ArrayLike<number>, vectors: Float32Array, write: (fd: number, bytes: Uint8Array, at: number) => unknown): void {
    if (vectors.length !== slots.length * this.dim) throw new SidxError('SIDX_ERR_DIMENSION', `${slots.length} slots but ${vectors.length / this.dim} vectors`, { field: 'vectors' });
    const bytes = new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength);
    const fd = this.#live();
    forRuns(slots, this.dim, (row, end, at) => write(fd, bytes.subarray(row, end), at));
  }

  #live(): number {
    if (this.#fd < 0) throw new SidxError('SIDX_ERR_STORE', `vector file ${this.path} is closed`);
    return this.#fd;
  }
}

/** Calls `io(byteStart, byteEnd, fileOffset)` once per run of consecutive slots. */
function forRuns(slots: ArrayLike<number>, dim: number, io: (start: number, end: number, at: number) => void): void {
  const rowBytes = 4 * dim;
  let run = 0;
  for (let i = 1; i <= slots.length; i++) {
    if (i < slots.length && slots[i] === slots[i - 1]! + 1) continue;
    io(run * rowBytes, i * rowBytes, slots[run]! * rowBytes);
    run = i;
  }
}

export function readFully(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const got = readSync(fd, into, done, into.length - done, position + done);
    if (got === 0) throw new SidxError('SIDX_ERR_STORE', 'vector file: a row past its end');
    done += got;
  }
}

/** fdatasync of `fd` on the libuv pool; rejects with the system error. */
export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

async function writeFullyAsync(fd: number, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await new Promise<number>((resolve, reject) => write(fd, bytes, done, bytes.length - done, position + done,
      (err, written) => (err ? reject(err) : resolve(written))));
  }
}

export function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
