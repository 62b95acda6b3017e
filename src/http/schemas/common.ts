import { Type } from '../../typebox.ts';
import type { Static } from '@sinclair/typebox';

export const EmbeddingSchema = Type.Union(
  [
    Type.Array(Type.Number(), { minItems: 1, description: 'Embedding as a JSON number array' }),
    // No minLength: AJV counts a string's code points one by one for it (2,732 characters for 512-d), and the decoder
    // refuses an empty string anyway (it decodes to 0 floats, not the model's dimension).
    Type.String({ description: 'Embedding as base64 of little-endian float32' }),
  ],
  { $id: 'Embedding', description: 'A number array, or a base64 string of little-endian float32' },
);

/**
 * A string that is one of `values`, as one JSON Schema `enum` (TypeBox's Union of Literals is an anyOf of one-value
 * enums): a refused value's 400 then lists the allowed values (errors.ts), and the OpenAPI shows one enum.
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export const SidSchema = Type.Array(Type.Integer({ minimum: 0, maximum: 65535 }), {
  $id: 'Sid',
  minItems: 1,
  maxItems: 16,
  description: 'A semantic ID: one code per level, coarsest first',
});

export const ErrorResponseSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Stable SIDX_ERR_* code (see docs/errors.md)' }),
    error: Type.String({ description: 'HTTP status text' }),
    message: Type.String(),
    field: Type.Optional(Type.String({ description: 'The request field at fault, e.g. items[3].embedding' })),
  },
  { $id: 'ErrorResponse' },
);

export type EmbeddingInput = Static<typeof EmbeddingSchema>;
export type ErrorResponse = Static<typeof ErrorResponseSchema>;

/** References to the shared schemas that keep their static types (a bare Type.Ref is typed unknown). */
export const EmbeddingRef = Type.Unsafe<EmbeddingInput>(Type.Ref('Embedding'));
export const SidRef = Type.Unsafe<number[]>(Type.Ref('Sid'));
export const ErrorRef = Type.Unsafe<ErrorResponse>(Type.Ref('ErrorResponse'));

/** Responses every route may give besides its 2xx. */
export const errorResponses = {
  400: ErrorRef,
  500: ErrorRef,
  503: ErrorRef,
};

/**
 * The 503 of a read route that load shedding may refuse: src/http/load-shed.ts sheds exactly the routes whose
 * schema declares this object, so the OpenAPI document and the behaviour cannot drift apart.
 */
export const ShedErrorRef = Type.Unsafe<ErrorResponse>({
  ...Type.Ref('ErrorResponse'),
  description: 'SIDX_ERR_OVERLOADED: the encoder queue holds limits.maxEncoderQueue chunks, nothing was done, retry '
    + 'after Retry-After seconds; or SIDX_ERR_NOT_READY: the service is starting or stopping',
  headers: { 'Retry-After': Type.Integer({ minimum: 1, description: 'Seconds to wait before retrying (SIDX_ERR_OVERLOADED)' }) },
});

/** Responses of a read route that waits in the encoder queue: load shedding may refuse it. */
export const sheddableErrorResponses = { ...errorResponses, 503: ShedErrorRef };

const NO_BODY = 'No body, or an empty JSON object';

/** The body of an action that takes no input: none at all, or `{}`; any field is unknown (400). */
export const NoBodySchema = Type.Object({}, { additionalProperties: false, description: NO_BODY });

type OpenApiDoc = { paths?: Record<string, Record<string, { requestBody?: { required?: boolean; description?: string } }>> };

/** @fastify/swagger `transformObject`: a NoBodySchema body is optional (the generator marks every body required). */
export function optionalNoBody({ openapiObject }: { openapiObject: unknown }): unknown {
  for (const route of Object.values((openapiObject as OpenApiDoc).paths ?? {})) {
    for (const op of Object.values(route)) {
      if (op.requestBody?.description === NO_BODY) op.requestBody.required = false;
    }
  }
  return openapiObject;
}

export const sharedSchemas = [EmbeddingSchema, SidSchema, ErrorResponseSchema];
