/** The use-case surface the HTTP layer and the CLI talk to. */
import type { BeamResult, EncodeResult } from '../tokenizer/encoder-pool.ts';
export type ExpandMode = 'none' | 'hamming1' | 'auto' | 'beam';
/** beam: the item's SID is in the final level of the query's beam; prefix: found under a shorter beam prefix. */
export type MatchKind = 'exact' | 'hamming1' | 'beam' | 'prefix';

export interface ModelInfo {
  id: string;
  inputDim: number;
  levels: number;
  codebookSizes: readonly number[];
  metric: 'ip' | 'l2';
}

export interface EncodeOutput {
  model: string;
  /** n × levels codes. */
  codes: Int32Array;
  n: number;
}

export interface RetrieveQuery {
  embedding?: Float32Array;
  /** Ordered beam of SIDs, best first. */
  sids?: Int32Array[];
  k: number;
  /** Default: 'beam' when an embedding is given and the served model ships beam.onnx, else 'auto'. */
  expand?: ExpandMode;
  /** Default: true when an embedding is given. */
  rerank?: boolean;
  maxCandidates: number;
  /** Prefixes kept per level with expand 'beam' (default DEFAULT_BEAM_WIDTH). */
  beamWidth?: number;
  /** The served model's encoder output for `embedding`, computed elsewhere (a cluster router, once for all shards). */
  encoded?: QueryEncoding;
}

/** `beam` for expand 'beam', `enc` (one row) for the other expansions with an embedding and no sids. */
export interface QueryEncoding {
  beam?: BeamResult;
  enc?: EncodeResult;
}

/**
 * Beam width used when a beam request names none. 32 with 1,250 candidates found as much of the exact top 10 as 128 with
 * 1,000 did, from a quarter of the beam's children (docs/benchmarks.md, "Where it stands (stop 34)"); past 32 the
 * candidate cap (limits.defaultMaxCandidates, 1,500 since stop 44) is what buys recall.
 */
export const DEFAULT_BEAM_WIDTH = 32;
/** Largest beam width a request may ask for (cost per level: width × K_l × dim). */
export const MAX_BEAM_WIDTH = 4096;

export interface RetrievedItem {
  id: string;
  score: number | null;
  sid: Int32Array;
  match: MatchKind;
}

export interface RetrieveOutput {
  model: string;
  /** The expansion used (the request's, or the default it resolved to). */
  expand: ExpandMode;
  items: RetrievedItem[];
  querySids: Int32Array[];
  candidates: { exact: number; hamming1: number; beam: number; prefix: number; total: number };
  /** Server-side phases in ms: encoder run, level-wise beam, candidate gathering, rerank, reading the top-k records. */
  timingsMs: { encode: number; beam: number; candidates: number; rerank: number; fetch: number; total: number };
  /** Cluster router only: shards that did not answer in time (the items are from the others). */
  missingShards?: number[];
}

export interface UpsertItem {
  id: string;
  vector: Float32Array;
}

export interface UpsertOutput {
  model: string;
  seq: bigint;
  /** `replaced`: absent only from a cluster router without cluster.waitApplied (not known when it answers). */
  items: Array<{ id: string; sid: Int32Array; replaced?: boolean }>;
}

/** A write's position in the cluster's replicated log: recorded in the same catalog transaction as the write. */
export interface LogPosition {
  seq: bigint;
}

/**
 * What the caller of an upsert has already refused: `finite`, any non-finite value in its vectors (the HTTP decoder
 * and `sidx index`'s readers check every value), so the catalog does not pass over them a second time.
 */
export interface UpsertChecks {
  finite?: boolean;
}

export interface DeleteOutput {
  seq: bigint;
  deleted: number;
  missing: string[];
}

export interface ItemView {
  id: string;
  sid: Int32Array;
  model: string;
}

export interface Readiness {
  ready: boolean;
  model: string | null;
  provider: string | null;
  items: number;
  vectors: number;
}
