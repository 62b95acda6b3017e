/**
 * Domain errors. Every error the service raises on purpose carries a stable `SIDX_ERR_*` code and no HTTP
 * status: `src/http/errors.ts` alone maps codes to statuses. Each code is documented in docs/errors.md
 * (a test checks that the two lists agree).
 */
export const ErrorCodes = {
  SIDX_ERR_INVALID_INPUT: 'Request or file content is invalid',
  SIDX_ERR_DIMENSION: 'Embedding has the wrong dimension',
  SIDX_ERR_NOT_FINITE: 'Embedding contains NaN or Infinity',
  SIDX_ERR_NORM_TOO_LARGE: 'Embedding norm exceeds limits.maxVectorNorm',
  SIDX_ERR_BASE64: 'Embedding is not valid base64 of little-endian float32',
  SIDX_ERR_BATCH_EMPTY: 'Batch is empty',
  SIDX_ERR_BATCH_TOO_LARGE: 'Batch exceeds the configured maximum',
  SIDX_ERR_DUPLICATE_ID: 'The same id appears twice in one batch',
  SIDX_ERR_UNKNOWN_MODEL: 'No such model',
  SIDX_ERR_NO_KEY_SPACE: 'The model is registered but has no SIDs in the catalog (neither served nor a re-index target)',
  SIDX_ERR_NOT_FOUND: 'No such item',
  SIDX_ERR_JOB_NOT_FOUND: 'No such job',
  SIDX_ERR_CONFLICT: 'The request conflicts with the current state (e.g. a re-index is already running)',
  SIDX_ERR_UNAUTHENTICATED: 'No API key: send Authorization: Bearer <key>',
  SIDX_ERR_FORBIDDEN: 'The API key is unknown, revoked, or lacks the scope this route needs',
  SIDX_ERR_RATE_LIMITED: 'Too many requests for this API key',
  SIDX_ERR_NOT_READY: 'Service is not ready',
  SIDX_ERR_OVERLOADED: 'The encoder queue is full: read refused, retry after Retry-After seconds',
  SIDX_ERR_MODEL_BUNDLE: 'Model bundle is invalid',
  SIDX_ERR_STORE: 'Storage failure',
  SIDX_ERR_VECTOR: 'Vector index failure',
  SIDX_ERR_ENCODER: 'Encoder failure',
  SIDX_ERR_CONFIG: 'Configuration is invalid',
  SIDX_ERR_DATA_DIR_LOCKED: 'Another sidx process is using the data directory',
  SIDX_ERR_ROUTE_NOT_FOUND: 'No such route',
  SIDX_ERR_CLUSTER_UNSUPPORTED: 'Not available on a cluster router',
  SIDX_ERR_MODEL_SWAP: 'A shard serves another model than the one the query was encoded with (a model flip is under way)',
  SIDX_ERR_CLUSTER: 'The cluster could not take the request (write log or shards unreachable)',
  SIDX_ERR_INTERNAL: 'Unexpected internal error (details are logged, not returned)',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class SidxError extends Error {
  readonly code: ErrorCode;
  /** JSON-pointer-like name of the offending field, e.g. "items[3].embedding". */
  readonly field?: string;

  constructor(code: ErrorCode, message?: string, options?: { field?: string; cause?: unknown }) {
    super(message ?? ErrorCodes[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SidxError';
    this.code = code;
    this.field = options?.field;
  }
}

export function isSidxError(err: unknown): err is SidxError {
  return err instanceof SidxError;
}

/**
 * What to do when a model id is registered with one bundle digest and a bundle of that id now has another (rebuilt
 * in place: any byte of model.json or the ONNX files changes the digest; or another bundle given the same id). The
 * catalog's SIDs belong to the registered files, which a re-index also reads, so they stay where they are.
 */
export const CHANGED_BUNDLE_HINT = 'keep (or put back) the registered files at that path; a new or rebuilt bundle needs a '
  + 'directory and an id of its own (model.json `id`, sidx train --id): register it (POST /v1/models), then re-index to '
  + 'it, or activate it while the catalog is empty';
