import { Type } from '../../typebox.ts';
import type { Static } from '@sinclair/typebox';
import { errorResponses, ErrorRef, StringEnum } from './common.ts';

const ModelIdSchema = Type.String({ minLength: 1, maxLength: 128, description: 'Model id (default: the served model)' });
const Code = Type.Integer({ minimum: 0, maximum: 65535 });
const SidListSchema = Type.Array(Type.Array(Code), { description: 'SIDs, one code array each, in lexicographic order' });
const Seq = (description: string) => Type.String({ pattern: '^[0-9]+$', description });

export const NextBodySchema = Type.Object(
  {
    prefixes: Type.Array(Type.Array(Code, { maxItems: 16, description: 'A SID prefix of 0..L codes, coarsest first' }), {
      // No minItems: an empty list is the route's 400 SIDX_ERR_BATCH_EMPTY, as for the other batch routes.
      description: 'Prefixes to extend, 1..limits.maxBatch; the prefix [] asks for level 0',
    }),
    model: Type.Optional(ModelIdSchema),
  },
  { additionalProperties: false },
);

export const NextResponseSchema = Type.Object({
  model: Type.String(),
  levels: Type.Integer(),
  next: Type.Array(
    Type.Object({
      codes: Type.Array(Code, { description: 'Codes that extend the prefix towards at least one item, ascending' }),
      counts: Type.Array(Type.Integer({ minimum: 1 }), { description: 'Items whose SID starts with prefix + code' }),
    }),
    { description: 'One entry per prefix, in request order; a full-length prefix has nothing to extend (empty arrays)' },
  ),
});

export const TrieQuerySchema = Type.Object(
  {
    model: Type.Optional(ModelIdSchema),
    format: Type.Optional(StringEnum(['binary', 'json'], {
      default: 'binary', description: 'binary: application/octet-stream, layout in docs/sid-trie.md',
    })),
    since: Type.Optional(Type.String({
      pattern: '^(?:[0-9]{1,5}\\.)?[0-9]{1,20}$',
      description: 'A seq from an earlier answer, or its ETag "<version>.<seq>" without quotes. Answers only the SIDs '
        + 'occupied and emptied after it, when the server still can; otherwise a full snapshot (kind says which)',
    })),
  },
  { additionalProperties: false },
);

export const TrieJsonSchema = Type.Object({
  model: Type.String(),
  levels: Type.Integer(),
  seq: Seq('Catalog change sequence the answer reflects (decimal); on a cluster router a digest of the shards\' tries (docs/sid-trie.md)'),
  since: Type.Optional(Seq('The seq the delta starts after (delta only)')),
  kind: Type.Union([Type.Literal('full'), Type.Literal('delta')]),
  sids: Type.Optional(SidListSchema),
  added: Type.Optional(SidListSchema),
  removed: Type.Optional(SidListSchema),
});

const etag = { ETag: Type.String({ description: '"<modelVersion>.<seq>"' }) };

export const nextRoute = {
  summary: 'Codes that extend SID prefixes towards items of the catalog, with item counts (constrained decoding)',
  tags: ['sids'],
  body: NextBodySchema,
  response: {
    200: {
      description: 'One entry per prefix; JSON by default, the SIDN binary layout with Accept: application/octet-stream',
      content: {
        'application/json': { schema: NextResponseSchema },
        'application/octet-stream': { schema: Type.String({ format: 'binary', description: 'SIDN layout (docs/sid-trie.md)' }) },
      },
    },
    409: ErrorRef,
    ...errorResponses,
  },
};

export const trieRoute = {
  summary: 'Every occupied SID of a model (binary or JSON), or the SIDs added and removed since a seq',
  tags: ['sids'],
  querystring: TrieQuerySchema,
  response: {
    200: {
      description: 'Full snapshot or delta; ETag "<modelVersion>.<seq>"',
      headers: etag,
      content: {
        'application/octet-stream': { schema: Type.String({ format: 'binary', description: 'SIDT layout (docs/sid-trie.md)' }) },
        'application/json': { schema: TrieJsonSchema },
      },
    },
    304: { description: 'If-None-Match equals the current ETag: nothing changed', headers: etag, type: 'null' },
    409: ErrorRef,
    ...errorResponses,
  },
};

export type NextBody = Static<typeof NextBodySchema>;
export type TrieQuery = Static<typeof TrieQuerySchema>;
