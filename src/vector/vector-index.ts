/**
 * The FAISS vector index used for exact reranking: Float32Array n*d in, Float32Array + BigInt64Array n*k out,
 * -1 padded. Ids are external signed 64-bit integers (bigint). Shapes are checked here before the native call;
 * every native failure surfaces as a SidxError (SIDX_ERR_VECTOR unless the addon reported a more specific code).
 *
 * Concurrency: sync methods (add, remove, scoreSubset, ntotal) wait for an in-flight async write (addAsync,
 * train) on the same index; reads run in parallel. close() is safe while async calls are pending: the native
 * index is freed when they finish. Arrays passed to async methods must not be transferred until they settle.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

import { ErrorCodes, SidxError, type ErrorCode } from '../errors.ts';
import { loadFaissBinding, type NativeIndex, type PrincipalComponents } from './binding.ts';

export type Metric = 'ip' | 'l2';

export interface VectorIndexOptions {
  dim: number;
  metric: Metric;
  /** FAISS index_factory description of the storage, e.g. "Flat" (default), "IVF4096,Flat", "SQ8". No IDMap. */
  factory?: string;
}

export interface VectorSearchResult {
  /** n*k row-major: inner products (ip) or squared L2 distances (l2); NaN where the label is -1. */
  distances: Float32Array;
  /** n*k row-major external ids, -1 where fewer than k results exist. */
  labels: BigInt64Array;
}

export interface KMeansOptions {
  /** Iterations (FAISS default 25). */
  niter?: number;
  /** Seed for initialisation and subsampling; same seed, data and thread count give the same centroids. */
  seed?: number;
  /** Normalise centroids to unit length after each iteration. */
  spherical?: boolean;
  /** Subsample the data to k * this many points (FAISS default 256). */
  maxPointsPerCentroid?: number;
  /** Below k * this many points FAISS prints a warning (default 39). */
  minPointsPerCentroid?: number;
}

export class VectorIndex {
  #handle: NativeIndex | null;
  readonly dim: number;
  readonly metric: Metric;

  private constructor(handle: NativeIndex) {
    this.#handle = handle;
    this.dim = handle.dim;
    this.metric = handle.metric;
  }

  /** [sync] An empty index; throws SIDX_ERR_VECTOR on a factory string FAISS cannot parse. */
  static create(opts: VectorIndexOptions): VectorIndex {
    checkPositiveInteger(opts.dim, 'dim');
    if (opts.metric !== 'ip' && opts.metric !== 'l2') {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `metric must be "ip" or "l2", got ${String(opts.metric)}`, {
        field: 'metric',
      });
    }
    const factory = opts.factory ?? 'Flat';
    if (typeof factory !== 'string' || factory.trim() === '') {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'factory must be a non-empty string', { field: 'factory' });
    }
    const { Index } = loadFaissBinding();
    return new VectorIndex(callNative(() => new Index(opts.dim, opts.metric, factory)));
  }

  /** [async] Reads a file written by `write`; rejects if it is not an sidx (IDMap2-wrapped) FAISS index. */
  static async read(path: string): Promise<VectorIndex> {
    const binding = loadFaissBinding();
    return new VectorIndex(await callNativeAsync(() => binding.readIndex(path)));
  }

  get ntotal(): number {
    const handle = this.#live();
    return callNative(() => handle.ntotal);
  }

  get isTrained(): boolean {
    const handle = this.#live();
    return callNative(() => handle.isTrained);
  }

  /** [async] Needed before add for trained storages (IVF, PQ, SQ); a no-op for Flat. */
  async train(vectors: Float32Array): Promise<void> {
    const handle = this.#live();
    if (rowCount(vectors, this.dim, 'vectors') === 0) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'training needs at least one vector', { field: 'vectors' });
    }
    await callNativeAsync(() => handle.train(vectors));
  }

  /** [sync] Zero-copy add of n = vectors.length / dim rows; ids must be new (SIDX_ERR_DUPLICATE_ID otherwise). */
  add(vectors: Float32Array, ids: BigInt64Array): void {
    const handle = this.#live();
    checkIds(ids, rowCount(vectors, this.dim, 'vectors'));
    callNative(() => handle.add(vectors, ids));
  }

  /** [async] Like add, off the event loop, for large batches. */
  async addAsync(vectors: Float32Array, ids: BigInt64Array): Promise<void> {
    const handle = this.#live();
    checkIds(ids, rowCount(vectors, this.dim, 'vectors'));
    await callNativeAsync(() => handle.addAsync(vectors, ids));
  }

  /** [sync] Returns how many of `ids` were present. Only flat-code storages (Flat, SQ, PQ) support removal. */
  remove(ids: BigInt64Array): number {
    const handle = this.#live();
    checkIdArray(ids);
    return callNative(() => handle.remove(ids));
  }

  /**
   * [sync] Exact score of `query` against each id: inner product (ip) or squared L2 (l2), NaN where the id is
   * absent. Costs O(ids.length * dim) and never scans the index: this is the rerank primitive.
   */
  scoreSubset(query: Float32Array, ids: BigInt64Array): Float32Array {
    const handle = this.#live();
    checkQuery(query, this.dim);
    checkIdArray(ids);
    return callNative(() => handle.scoreSubset(query, ids));
  }

  /** [async] FAISS search of n = queries.length / dim queries; rows are best first. */
  async search(queries: Float32Array, k: number): Promise<VectorSearchResult> {
    const handle = this.#live();
    rowCount(queries, this.dim, 'queries');
    checkPositiveInteger(k, 'k');
    return callNativeAsync(() => handle.search(queries, k));
  }

  /**
   * [sync] Sets a FAISS search-time parameter by its faiss::ParameterSpace name: "nprobe" (IVF lists probed),
   * "efSearch" (HNSW). SIDX_ERR_VECTOR when the storage has no such parameter.
   */
  setSearchParameter(name: string, value: number): void {
    const handle = this.#live();
    if (typeof name !== 'string' || name === '') {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'name must be a non-empty string', { field: 'name' });
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'value must be a finite number', { field: 'value' });
    }
    callNative(() => handle.setSearchParameter(name, value));
  }

  /** [async] Writes `path + '.tmp'`, fsyncs it, then renames over `path`: a crash never leaves a torn file. */
  async write(path: string): Promise<void> {
    const handle = this.#live();
    if (typeof path !== 'string' || path === '') {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'path must be a non-empty string', { field: 'path' });
    }
    const temporary = `${path}.tmp`;
    try {
      await callNativeAsync(() => handle.write(temporary));
      await fsyncPath(temporary, 'r+');
      await rename(temporary, path);
    } catch (err) {
      await unlink(temporary).catch(() => undefined);
      throw err instanceof SidxError ? err : new SidxError('SIDX_ERR_VECTOR', `writing ${path} failed`, { cause: err });
    }
    await fsyncPath(dirname(path), 'r').catch(() => undefined);
  }

  /** [sync] Releases the native index (after any pending async call). Idempotent; later calls throw. */
  close(): void {
    this.#handle?.close();
    this.#handle = null;
  }

  #live(): NativeIndex {
    if (this.#handle === null) throw new SidxError('SIDX_ERR_VECTOR', 'VectorIndex is closed');
    return this.#handle;
  }
}

/** [async] k-means with FAISS (exact L2 assignment). Objective: sum of squared distances, one per iteration. */
export async function kmeans(
  data: Float32Array,
  dim: number,
  k: number,
  opts: KMeansOptions = {},
): Promise<{ centroids: Float32Array; objective: Float32Array }> {
  checkPositiveInteger(dim, 'dim');
  checkPositiveInteger(k, 'k');
  const rows = rowCount(data, dim, 'data');
  if (rows < k) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `k-means needs at least k = ${k} points, got ${rows}`, {
      field: 'data',
    });
  }
  const binding = loadFaissBinding();
  return callNativeAsync(() => binding.kmeans(data, dim, k, { ...opts }));
}

/**
 * [async] Principal components with FAISS (centred, not whitened): y = x weight + bias projects a row onto the top
 * k (weight [dim, k] row-major, bias = -mean weight); eigenvalues are the variances along them, descending, and
 * totalVariance the rows' whole variance (FAISS fits a sample of at most 1000 x dim rows).
 */
export async function principalComponents(data: Float32Array, dim: number, k: number): Promise<PrincipalComponents> {
  checkPositiveInteger(dim, 'dim');
  checkPositiveInteger(k, 'k');
  const rows = rowCount(data, dim, 'data');
  if (k > dim || rows < Math.max(2, k)) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `PCA to ${k} of ${dim} dimensions needs k <= ${dim} and at least ${Math.max(2, k)} rows, got ${rows}`, {
      field: 'data',
    });
  }
  const binding = loadFaissBinding();
  return callNativeAsync(() => binding.pca(data, dim, k));
}

/** [async] Nearest centroid (squared L2) for each row of `data`; centroids is k*dim. */
export async function assignNearest(
  data: Float32Array,
  dim: number,
  centroids: Float32Array,
): Promise<{ labels: Int32Array; distances: Float32Array }> {
  checkPositiveInteger(dim, 'dim');
  rowCount(data, dim, 'data');
  const k = rowCount(centroids, dim, 'centroids');
  if (k === 0) throw new SidxError('SIDX_ERR_INVALID_INPUT', 'centroids is empty', { field: 'centroids' });
  const binding = loadFaissBinding();
  return callNativeAsync(() => binding.assign(data, dim, centroids, k));
}

/**
 * [sync] Threads FAISS (OpenMP) and OpenBLAS may use per call, process-wide; 0 restores the default (all cores).
 * Each concurrent async call can use this many, so a server usually wants 1 or 2.
 */
export function setVectorThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 0) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', 'threads must be a non-negative integer', { field: 'threads' });
  }
  const binding = loadFaissBinding();
  callNative(() => binding.setNumThreads(threads));
}

export function getVectorThreads(): number {
  return loadFaissBinding().getNumThreads();
}

function rowCount(vectors: Float32Array, dim: number, field: string): number {
  if (!(vectors instanceof Float32Array)) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${field} must be a Float32Array`, { field });
  }
  if (vectors.length % dim !== 0) {
    throw new SidxError(
      'SIDX_ERR_DIMENSION',
      `${field} has ${vectors.length} floats, which is not a whole number of ${dim}-dimensional vectors`,
      { field },
    );
  }
  return vectors.length / dim;
}

/** A query for an index or store of `dim` dimensions: a Float32Array of that length, else SIDX_ERR_* (field `query`). */
export function checkQuery(query: Float32Array, dim: number): void {
  if (!(query instanceof Float32Array)) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', 'query must be a Float32Array', { field: 'query' });
  }
  if (query.length !== dim) {
    throw new SidxError('SIDX_ERR_DIMENSION', `query has ${query.length} floats, the index expects ${dim}`, {
      field: 'query',
    });
  }
}

function checkIdArray(ids: BigInt64Array): void {
  if (!(ids instanceof BigInt64Array)) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', 'ids must be a BigInt64Array', { field: 'ids' });
  }
}

function checkIds(ids: BigInt64Array, rows: number): void {
  checkIdArray(ids);
  if (ids.length !== rows) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `ids has ${ids.length} entries but vectors has ${rows} rows`, {
      field: 'ids',
    });
  }
}

function checkPositiveInteger(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${field} must be a positive integer, got ${String(value)}`, {
      field,
    });
  }
}

async function fsyncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
  const file = await open(path, flags);
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Native errors keep a specific SIDX_ERR_* code they carry (e.g. SIDX_ERR_DUPLICATE_ID), else SIDX_ERR_VECTOR. */
function toSidxError(err: unknown): SidxError {
  if (err instanceof SidxError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const known = typeof code === 'string' && Object.hasOwn(ErrorCodes, code) ? (code as ErrorCode) : 'SIDX_ERR_VECTOR';
  const message = err instanceof Error ? err.message : String(err);
  return new SidxError(known, message, { cause: err });
}

/** Runs a sync native call; its coded Error becomes a SidxError. */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw toSidxError(err);
  }
}

export async function callNativeAsync<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toSidxError(err);
  }
}
