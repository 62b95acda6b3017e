/**
 * The raw `sidx_faiss` addon (native/), typed. Load it through `loadFaissBinding()`; application code uses the
 * `VectorIndex` wrapper in vector-index.ts. Tags: [sync] blocks the calling thread, [async] runs on the libuv
 * pool and returns a promise. Every failure is an Error whose `code` is a SIDX_ERR_* string.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { addonPath } from '../native-addon.ts';

export type NativeMetric = 'ip' | 'l2';

export interface NativeSearchResult {
  /** n*k row-major; NaN where the label is -1. */
  distances: Float32Array;
  /** n*k row-major external ids; -1 pads rows with fewer than k results. */
  labels: BigInt64Array;
}

export interface NativeIndex {
  readonly dim: number;
  readonly metric: NativeMetric;
  readonly ntotal: number;
  readonly isTrained: boolean;
  /** [sync] Zero-copy; rejects ids already present or repeated (SIDX_ERR_DUPLICATE_ID). */
  add(vectors: Float32Array, ids: BigInt64Array): void;
  /** [async] Same as add; do not detach or transfer the arrays until it settles. */
  addAsync(vectors: Float32Array, ids: BigInt64Array): Promise<void>;
  /** [async] */
  train(vectors: Float32Array): Promise<void>;
  /** [sync] Number removed. Flat-code storages only (Flat, SQ, PQ); others throw SIDX_ERR_VECTOR. */
  remove(ids: BigInt64Array): number;
  /** [sync] Inner product or squared L2 per id, NaN for absent ids; O(ids.length * dim), never a scan. */
  scoreSubset(query: Float32Array, ids: BigInt64Array): Float32Array;
  /** [async] */
  search(queries: Float32Array, k: number): Promise<NativeSearchResult>;
  /** [sync] faiss::ParameterSpace search parameter, e.g. "nprobe" (IVF) or "efSearch" (HNSW); throws if unknown. */
  setSearchParameter(name: string, value: number): void;
  /** [async] Writes the FAISS file at `path` as is (no temp file). */
  write(path: string): Promise<void>;
  /** [sync] Drops the index; it is freed once in-flight async calls finish. Later calls throw. */
  close(): void;
  /** [sync] Does nothing: prices a method call across the boundary. */
  noop(): void;
}

/** pqTrain's result. */
export interface PqTrained {
  centroids: Float32Array;
  /** The squared residuals (distance to the decoding) of the rows held out of the k-means, in sample order; empty below 512 rows. */
  heldOut: Float32Array;
}

/**
 * Codes by slot in native memory, a fixed number of bytes per vector (native/src/slot_codes.h): 8-bit scalar codes
 * (Sq8Codes, dim bytes) or FAISS product-quantisation codes (PqCodes, m bytes); all [sync].
 */
export interface NativeCodes {
  /** n rows of codes (Sq8Codes: round((x - vmin) / step) clamped to 0..255; PqCodes: ProductQuantizer::compute_codes's, by an AVX2 loop where the CPU has
   * one, or by FAISS with `reference`, a row's last code 255 (flagged) when the vector's squared residual is above the
   * holder's limit; throws untrained). */
  encode(vectors: Float32Array, reference?: boolean): Uint8Array;
  /** PqCodes only: `encode` on the libuv pool (leave `vectors` untouched until it settles). */
  encodeAsync?(vectors: Float32Array): Promise<Uint8Array>;
  /** Stores row i of `codes` at slots[i]. */
  put(slots: Int32Array, codes: Uint8Array): void;
  /**
   * Starts moving the codes of `slots` to rows 0, 1, ... in that order (the others' after them), so that slots given
   * next to each other are read as runs of consecutive memory; scores and puts are the same before, during and after.
   * Slots given twice or not covered are skipped. Not before `readFromAsync` settled (throws after a layout).
   */
  planLayout(slots: Int32Array): void;
  /** Up to `positions` positions of the plan on this thread (a pool score meanwhile scores again); returns those left. */
  layoutStep(positions: number): number;
  /** The row of memory that holds each slot's codes (the slot itself until a layout moved it); -1 for a negative slot. */
  rowsOf(slots: Int32Array): Int32Array;
  /**
   * Reads slots 0 .. count - 1 (rows back to back) from file descriptor `fd` at byte `offset` into memory, on the libuv
   * pool; put nothing meanwhile and keep `fd` open until it settles (a close meanwhile waits for it).
   */
  readFromAsync(fd: number, offset: number, count: number): Promise<void>;
  /**
   * ip or squared L2 of `query` against the codes (Sq8Codes: the decoding vmin + code * step; PqCodes: one m x 256
   * table per call, summed over each slot's codes, the table by FAISS's own loops with `reference`); NaN where
   * slots[i] < 0 or unset.
   */
  score(query: Float32Array, slots: Int32Array, reference?: boolean): Float32Array;
  /**
   * The positions of `slots` whose rows are flagged, ascending: Sq8Codes, codes holding a 0 or 255 (a value clamped to
   * its range's end); PqCodes, a last code of 255 (a residual above the limit). Their code scores may be far off: the
   * rerank scores them exactly, as the native rerank does.
   */
  clampedAt(slots: Int32Array): Int32Array;
  /** Slots whose rows are flagged (freed ones too, until released). */
  readonly clampedStored: number;
  /**
   * Freed slots' codes (stale, or zeros where none were written) become neutral (never flagged) and stop counting;
   * `settle` (right after a read, with every free slot): when no flagged row is left, scores stop looking for one.
   */
  release(slots: Int32Array, settle?: boolean): void;
  /**
   * Sq8Codes only: `score` on the libuv pool (the caller leaves `slots` untouched until it settles; a close meanwhile
   * waits for it to settle);
   * with `rows` and `rescore`, the clamped ones (`clampedAt`) and then the best `rescore` of all (ties in position order)
   * are replaced there by exact scores of their rows in `rows`, and `exact` lists their positions (ascending); with `head`, `top` holds the
   * best `head` positions of the final scores, best first (service/score-rank.ts's order).
   */
  scoreAsync?(query: Float32Array, slots: Int32Array): Promise<Float32Array>;
  scoreAsync?(query: Float32Array, slots: Int32Array, rows: NativeSlotMap, rescore: number, head?: number):
    Promise<{ scores: Float32Array; exact: Int32Array; top?: Int32Array }>;
  /**
   * The codes' scores for keys, whose slots the pool thread reads from `dense` (SlotFile.denseMap: slot + 1 by key, 0 =
   * none, for keys below `denseKeys`), the best `rescore` re-scored exactly from `rows` (`read`: by pread, so that the
   * rows add nothing to the RSS; else through its mapping), `exact` their positions, `top` the best `head` positions,
   * on the libuv pool; `unresolved` counts keys from `denseKeys` on (scored NaN); `coverRows`: rows `rows` must cover.
   * The caller scores again when the map changed meanwhile. PqCodes: throws untrained.
   */
  rankKeysAsync?(query: Float32Array, keys: BigInt64Array, dense: Int32Array, denseKeys: number, coverRows: number, rows: NativeSlotMap,
    rescore: number, head: number, read?: boolean):
    Promise<{ scores: Float32Array; exact: Int32Array; top: Int32Array; unresolved: number }>;
  /** `rankKeysAsync` on the calling thread. */
  rankKeys?(query: Float32Array, keys: BigInt64Array, dense: Int32Array, denseKeys: number, coverRows: number, rows: NativeSlotMap,
    rescore: number, head: number, read?: boolean): { scores: Float32Array; exact: Int32Array; top: Int32Array; unresolved: number };
  /** Bytes of codes allocated (64 Ki-slot blocks). */
  readonly bytes: number;
  close(): void;
}

/** A vector slot file (row s at byte s * 4 * dim) mapped read-only from the page cache (native/src/slot_map.h). */
export interface NativeSlotMap {
  readonly dim: number;
  readonly metric: NativeMetric;
  /** Whole rows in the file at the last refresh. */
  readonly slots: number;
  /** [sync] Re-reads the file size (remaps when it grew past the mapping); returns slots. */
  refresh(): number;
  /** [sync] Inner product or squared L2 per slot, read in place; NaN for a negative slot or one past the file's end. */
  scoreSlots(query: Float32Array, slots: Int32Array): Float32Array;
  /**
   * [async] scoreSlots' scores computed on the libuv pool (rows resolved on the calling thread; the mapping stays
   * mapped until the call settles, even across a remap or close).
   */
  scoreSlotsAsync(query: Float32Array, slots: Int32Array): Promise<Float32Array>;
  /** [sync] scoreSlots' scores from rows read with pread (the mapping is not touched: no RSS for them). */
  readScoreSlots(query: Float32Array, slots: Int32Array): Float32Array;
  /** [sync] Copies of the rows, slots.length x dim; throws SIDX_ERR_VECTOR on a slot out of range. */
  gather(slots: Int32Array): Float32Array;
  /** [sync] Unmaps; later calls throw. */
  close(): void;
}

export interface NativeBeamSearch {
  readonly levels: number;
  readonly dim: number;
  /**
   * [sync] Beams of `width` for the n x dim rows of `z`: level after level, the n x B_l x l prefixes into `codes` and
   * their n x B_l scores into `scores` (lengths exactly those; B_l as beamWidths computes them), best first. With
   * `own` (the encoder's n x L codes) and `cross` (its level-l Gemm outputs, n x K_l) and the constructor's
   * crossNorms, the codeword dot products come from them instead of the codebooks (native/src/beam_search.h).
   */
  search(z: Float32Array, n: number, width: number, normWeight: number, codes: Int32Array, scores: Float32Array,
    own?: Int32Array, cross?: Float32Array[]): void;
}

export interface NativeKMeansOptions {
  niter?: number;
  seed?: number;
  spherical?: boolean;
  maxPointsPerCentroid?: number;
  minPointsPerCentroid?: number;
}

/** faiss::PCAMatrix's top-k components (weight [d, k] row-major, bias = -mean weight), their variances, and the total. */
export interface PrincipalComponents {
  weight: Float32Array;
  bias: Float32Array;
  eigenvalues: Float32Array;
  totalVariance: number;
}

export interface SidxFaissBinding {
  /** [sync] Throws on a bad factory description. */
  Index: new (dim: number, metric: NativeMetric, description?: string) => NativeIndex;
  /**
   * [sync] Per-dimension ranges: vmin and step (dim floats each, step >= 0). `hugePages` (default true): the codes'
   * memory is advised for transparent huge pages (config `vectors.hugePages`).
   */
  Sq8Codes: new (dim: number, metric: NativeMetric, vmin: Float32Array, step: Float32Array, hugePages?: boolean) => NativeCodes;
  /**
   * [sync] m must divide dim; centroids: m x 256 x (dim / m) floats (FAISS layout), or null (not trained: put only);
   * `limit`: the squared residual above which `encode` flags a row (default: infinity, none).
   */
  PqCodes: new (dim: number, metric: NativeMetric, m: number, centroids: Float32Array | null, hugePages?: boolean, limit?: number) => NativeCodes;
  /**
   * [sync] Trains a faiss::ProductQuantizer (8 bits per sub-quantizer) on >= 256 rows; returns its centroids and the
   * squared residuals of the rows held out of the k-means to measure them (every tenth, from 512 rows on).
   */
  pqTrain(sample: Float32Array, dim: number, m: number, options?: { niter?: number; seed?: number; reference?: boolean }): PqTrained;
  /** [async] pqTrain on the libuv pool; do not write to `sample` until it settles. */
  pqTrainAsync(sample: Float32Array, dim: number, m: number, options?: { niter?: number; seed?: number; reference?: boolean }): Promise<PqTrained>;
  /** [sync] Opens and maps the slot file at `path` (it must exist). */
  SlotMap: new (path: string, dim: number, metric: NativeMetric) => NativeSlotMap;
  /** [sync] The beam of src/numeric/beam-graph.ts over `codebooks` (native/src/beam_search.h). */
  BeamSearch: new (codebooks: Float32Array[], dim: number, lutMaxBytes: number, crossNorms?: Float32Array[]) => NativeBeamSearch;
  /** [async] Rejects unless the file holds an IndexIDMap2-wrapped index. */
  readIndex(path: string): Promise<NativeIndex>;
  /** [async] faiss::Clustering with an exact IndexFlatL2. */
  kmeans(
    data: Float32Array,
    d: number,
    k: number,
    options?: NativeKMeansOptions,
  ): Promise<{ centroids: Float32Array; objective: Float32Array }>;
  /** [async] Nearest centroid (squared L2). */
  assign(
    data: Float32Array,
    d: number,
    centroids: Float32Array,
    k: number,
  ): Promise<{ labels: Int32Array; distances: Float32Array }>;
  /** [async] faiss::PCAMatrix: the top-k principal components as x weight + bias (weight [d, k]); variances descending, and their sum over all d. */
  pca(data: Float32Array, d: number, k: number): Promise<PrincipalComponents>;
  /**
   * [sync] One beam query's candidate gathering over a live posting index's runs into a candidate set's arrays
   * (native/src/posting_gather.cc; the caller is service/posting-index.ts): the new count, or -1 when it gathered
   * nothing (an exact SID that is not `levels` codes, a code outside [0, 65535], a set with room for fewer than `stop`).
   */
  gatherBeam(
    mainCodes: Uint16Array, mainWords: Uint32Array, mainCount: number,
    deltaCodes: Uint16Array, deltaWords: Uint32Array, deltaCount: number,
    dead: Uint8Array | null, dirStarts: Int32Array | null, dirDepth: number, dirRadix: number, levels: number,
    exact: readonly Int32Array[], beamCodes: readonly Int32Array[], beamWidths: Int32Array, maxCandidates: number, stop: number,
    outWords: Uint32Array, outMatch: Uint8Array, outTable: Int32Array, outCounts: Int32Array, count: number,
  ): number;
  /** [sync] Threads for FAISS's OpenMP loops and OpenBLAS, process-wide; 0 restores the library default. */
  setNumThreads(threads: number): void;
  /** [sync] */
  getNumThreads(): number;
  /**
   * [sync] Niceness in [0, 19] added (Linux) to each libuv pool thread when it next runs one of this addon's [async]
   * methods (the rerank's scoring among them), process-wide; 0 = none from now on (a raised thread stays raised unless
   * the process may lower it).
   */
  setPoolNice(nice: number): void;
  /** [sync] */
  noop(): void;
  /** [sync] glibc's mallopt M_ARENA_MAX and M_MMAP_THRESHOLD (0: left as is); false where the C library is not glibc. */
  tuneAllocator(arenaMax: number, mmapThreshold: number): boolean;
  readonly faissVersion: string;
}


let cached: SidxFaissBinding | undefined;

/** Loads the addon once per thread (it is context-aware, so worker threads may load it too). */
export function loadFaissBinding(): SidxFaissBinding {
  if (cached !== undefined) return cached;
  if (!existsSync(addonPath)) {
    throw new Error(
      `The FAISS addon is not built (missing ${addonPath}). Run \`npm run build:native\`; ` +
        'it needs a C++17 compiler and the Debian packages libfaiss-dev and libopenblas-dev.',
    );
  }
  const require = createRequire(import.meta.url);
  try {
    cached = require(addonPath) as SidxFaissBinding;
  } catch (cause) {
    throw new Error(
      `The FAISS addon at ${addonPath} failed to load (is libfaiss/libopenblas installed? rebuild with ` +
        `\`npm run build:native\`): ${(cause as Error).message}`,
      { cause },
    );
  }
  return cached;
}
