import { Type } from '../../typebox.ts';
import type { Static } from '@sinclair/typebox';
import { DEFAULT_BEAM_WIDTH, MAX_BEAM_WIDTH } from '../../service/types.ts';
import { EmbeddingRef, SidRef, StringEnum, sheddableErrorResponses } from './common.ts';

const EXPAND_MODES = ['none', 'hamming1', 'auto', 'beam'] as const;

export const RetrieveBodySchema = Type.Object(
  {
    embedding: Type.Optional(EmbeddingRef),
    sids: Type.Optional(
      Type.Array(SidRef, { minItems: 1, description: 'Ordered beam of generated SIDs, best first' }),
    ),
    k: Type.Optional(Type.Integer({ minimum: 1, default: 10, description: 'Number of items to return' })),
    expand: Type.Optional(
      StringEnum(EXPAND_MODES, {
        description: 'auto = add Hamming-1 neighbours when exact SID matches give fewer than k candidates; '
          + 'beam = level-wise beam over code prefixes from the embedding (needs an embedding and a model with '
          + 'beam.onnx): items of the given sids and of the embedding\'s own SID, then of the beam\'s SIDs, then under its '
          + 'shorter prefixes, up to maxCandidates. '
          + 'Default: beam when an embedding is given and the served model has beam.onnx, else auto',
      }),
    ),
    beamWidth: Type.Optional(Type.Integer({
      minimum: 1, maximum: MAX_BEAM_WIDTH,
      description: `Prefixes kept per level when the expansion is "beam" (refused with any other; default ${DEFAULT_BEAM_WIDTH})`,
    })),
    rerank: Type.Optional(
      Type.Boolean({ description: 'Order candidates by vector score; default true when an embedding is given' }),
    ),
    maxCandidates: Type.Optional(Type.Integer({ minimum: 1, description: 'Most candidates gathered before ranking' })),
  },
  { $id: 'RetrieveBody', additionalProperties: false },
);

const MatchSchema = Type.Union([Type.Literal('exact'), Type.Literal('hamming1'), Type.Literal('beam'), Type.Literal('prefix')], {
  description: 'exact SID, Hamming-1 neighbour, SID in the final level of the beam, or under a shorter beam prefix',
});

export const RetrieveResponseSchema = Type.Object({
  model: Type.String(),
  expand: StringEnum(EXPAND_MODES, {
    description: 'The expansion used: the request\'s, or the default it resolved to',
  }),
  items: Type.Array(
    Type.Object({
      id: Type.String(),
      score: Type.Union([Type.Number(), Type.Null()], {
        description: 'Vector score (inner product, or minus squared L2), higher is better; null without rerank',
      }),
      sid: SidRef,
      match: MatchSchema,
    }),
  ),
  querySids: Type.Array(SidRef, { description: 'The SIDs the candidates were gathered for' }),
  candidates: Type.Object({
    exact: Type.Integer(),
    hamming1: Type.Integer(),
    beam: Type.Integer(),
    prefix: Type.Integer(),
    total: Type.Integer(),
  }),
  timingsMs: Type.Object({
    encode: Type.Number({ description: 'encoder run (embedding -> SID), ms' }),
    beam: Type.Number({ description: 'level-wise beam over SID prefixes (expand "beam"), ms' }),
    candidates: Type.Number({ description: 'candidate gathering from the SID index, ms' }),
    rerank: Type.Number({ description: 'vector scoring and ordering of the candidates, ms' }),
    fetch: Type.Number({ description: 'reading the top-k item records, ms' }),
    total: Type.Number({ description: 'all of the above, ms' }),
  }, { description: 'Server-side phases; body parsing and response serialisation are in GET /metrics (sidx_request_phase_seconds)' }),
  partial: Type.Optional(Type.Boolean({ description: 'Cluster router only: true when some shards did not answer in time' })),
  missingShards: Type.Optional(Type.Array(Type.Integer(), { description: 'Cluster router only: the shards that did not answer' })),
}, { $id: 'RetrieveResponse' });

/** The shared schemas of this file (app.addSchema), referenced by both retrieve routes. */
export const retrieveSchemas = [RetrieveBodySchema, RetrieveResponseSchema];
const RetrieveBodyRef = Type.Unsafe<Static<typeof RetrieveBodySchema>>(Type.Ref('RetrieveBody'));
const RetrieveResponseRef = Type.Unsafe<Static<typeof RetrieveResponseSchema>>(Type.Ref('RetrieveResponse'));

export const retrieveRoute = {
  summary: 'Retrieve items for a query embedding and/or a beam of generated SIDs',
  tags: ['retrieve'],
  body: RetrieveBodyRef,
  response: { 200: RetrieveResponseRef, ...sheddableErrorResponses },
};

export const RetrieveBatchBodySchema = Type.Object(
  {
    queries: Type.Array(RetrieveBodyRef, {
      minItems: 1,
      description: 'Queries, each a POST /v1/retrieve body (at most limits.maxBatch); all are checked before any runs',
    }),
  },
  { additionalProperties: false },
);

export const RetrieveBatchResponseSchema = Type.Object({
  results: Type.Array(RetrieveResponseRef, { description: 'One answer per query, in the order of the queries' }),
});

export const retrieveBatchRoute = {
  summary: 'Retrieve for many queries in one request (a generator\'s beams for a batch of users)',
  description: 'Each query is answered as POST /v1/retrieve answers it. A query the single route refuses makes the '
    + 'whole request a 400 naming it (queries[i].field), and none runs. On a single node one model answers them all.',
  tags: ['retrieve'],
  body: RetrieveBatchBodySchema,
  response: { 200: RetrieveBatchResponseSchema, ...sheddableErrorResponses },
};

export type RetrieveBody = Static<typeof RetrieveBodySchema>;
export type RetrieveBatchResponse = Static<typeof RetrieveBatchResponseSchema>;
export type RetrieveResponse = Static<typeof RetrieveResponseSchema>;
