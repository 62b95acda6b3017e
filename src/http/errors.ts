/**
 * The one place where domain error codes become HTTP statuses. Unknown errors become a 500 whose text is
 * hidden from the client (it is logged).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, isSidxError } from '../errors.ts';
import type { ErrorResponse } from './schemas/common.ts';
import { fieldFromPointer, validationProblem, valueAt } from './validation-message.ts';

export { fieldFromPointer };

export const statusOf: Record<ErrorCode, number> = {
  SIDX_ERR_INVALID_INPUT: 400,
  SIDX_ERR_DIMENSION: 400,
  SIDX_ERR_NOT_FINITE: 400,
  SIDX_ERR_NORM_TOO_LARGE: 400,
  SIDX_ERR_BASE64: 400,
  SIDX_ERR_BATCH_EMPTY: 400,
  SIDX_ERR_BATCH_TOO_LARGE: 400,
  SIDX_ERR_DUPLICATE_ID: 400,
  SIDX_ERR_UNKNOWN_MODEL: 400,
  SIDX_ERR_NO_KEY_SPACE: 409,
  SIDX_ERR_NOT_FOUND: 404,
  SIDX_ERR_JOB_NOT_FOUND: 404,
  SIDX_ERR_CONFLICT: 409,
  SIDX_ERR_UNAUTHENTICATED: 401,
  SIDX_ERR_FORBIDDEN: 403,
  SIDX_ERR_RATE_LIMITED: 429,
  SIDX_ERR_NOT_READY: 503,
  SIDX_ERR_OVERLOADED: 503,
  SIDX_ERR_MODEL_BUNDLE: 500,
  SIDX_ERR_STORE: 500,
  SIDX_ERR_VECTOR: 500,
  SIDX_ERR_ENCODER: 500,
  SIDX_ERR_CONFIG: 500,
  SIDX_ERR_DATA_DIR_LOCKED: 500,
  SIDX_ERR_ROUTE_NOT_FOUND: 404,
  SIDX_ERR_CLUSTER_UNSUPPORTED: 501,
  SIDX_ERR_CLUSTER: 503,
  SIDX_ERR_MODEL_SWAP: 503,
  SIDX_ERR_INTERNAL: 500,
};

const statusText: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

function body(statusCode: number, code: string, message: string, field?: string): ErrorResponse {
  const out: ErrorResponse = { statusCode, code, error: statusText[statusCode] ?? 'Error', message };
  if (field !== undefined) out.field = field;
  return out;
}

/**
 * A JSON number beyond float64 (`1e309`) parses to Infinity, which the schema refuses as "not a number": give it the
 * code a number beyond float32 (`1e39`) gets, SIDX_ERR_NOT_FINITE, naming the element. Undefined for other failures.
 */
function nonFiniteField(err: FastifyError, body: unknown): string | undefined {
  for (const v of err.validation ?? []) {
    const value = valueAt(body, v.instancePath);
    if (typeof value === 'number' && !Number.isFinite(value)) return fieldFromPointer(v.instancePath);
  }
  return undefined;
}

export function errorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (isSidxError(err)) {
    const status = statusOf[err.code];
    if (status === 503) {
      // A deliberate refusal (starting, stopping, overloaded), not a failure: the request log line records it,
      // and an error line per shed request would add load exactly when the service has none to spare.
      void reply.status(503).send(body(503, err.code, err.message));
      return;
    }
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      void reply.status(status).send(body(status, err.code, 'internal error'));
      return;
    }
    void reply.status(status).send(body(status, err.code, err.message, err.field));
    return;
  }
  const nonFinite = err.validation && err.validationContext === 'body' ? nonFiniteField(err, request.body) : undefined;
  if (nonFinite) {
    void reply.status(400).send(body(400, 'SIDX_ERR_NOT_FINITE', `${nonFinite} is not a finite float32`, nonFinite));
    return;
  }
  if (err.validation) {
    const { message, field } = validationProblem(err, request);
    void reply.status(400).send(body(400, 'SIDX_ERR_INVALID_INPUT', message, field));
    return;
  }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    void reply.status(415).send(body(415, 'SIDX_ERR_INVALID_INPUT', unsupportedMediaType(request.headers['content-type'])));
    return;
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    // Fastify's own client errors: malformed JSON, body too large, wrong content type.
    void reply.status(status).send(body(status, 'SIDX_ERR_INVALID_INPUT', err.message));
    return;
  }
  request.log.error({ err }, 'request failed');
  void reply.status(500).send(body(500, 'SIDX_ERR_INTERNAL', 'internal error'));
}

/** The 415 of a body whose content-type no parser takes (the app parses JSON only): what came, and what to send. */
function unsupportedMediaType(header: string | undefined): string {
  const type = header?.split(';')[0]?.trim().slice(0, 100);
  const fix = 'send the body as JSON with content-type: application/json';
  if (!type) return `the body has no content-type: ${fix}`;
  const curl = type === 'application/x-www-form-urlencoded' ? ' (curl -d sends application/x-www-form-urlencoded: add -H \'content-type: application/json\')' : '';
  return `content-type ${type} is not supported: ${fix}${curl}`;
}

/** Errors Fastify's router raises before any route runs (malformed percent-encoding, over-long parameters). */
export function frameworkErrorHandler(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  void reply.status(status).send(body(status, 'SIDX_ERR_INVALID_INPUT', err.message));
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  void reply.status(404).send(body(404, 'SIDX_ERR_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url}`));
}
