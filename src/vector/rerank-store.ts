/**
 * What the rerank needs from the in-memory copy of the vectors: the FAISS flat index (VectorIndex, config
 * `vectors.storage` f32) or the 8-bit codes re-scored from the slot file (Sq8Store, sq8). Keys are the catalog's
 * internal keys.
 */
import type { Metric } from './vector-index.ts';

export interface RerankStore {
  readonly dim: number;
  readonly metric: Metric;
  /** Vectors held. */
  readonly ntotal: number;
  /** Row i of `vectors` for ids[i]; the ids must not be held yet. */
  add(vectors: Float32Array, ids: BigInt64Array): void;
  /** Returns how many of `ids` were held. */
  remove(ids: BigInt64Array): number;
  /** Inner product (ip) or squared L2 of `query` against each id, NaN where the id is absent. */
  scoreSubset(query: Float32Array, ids: BigInt64Array): Float32Array;
  close(): void;
}
