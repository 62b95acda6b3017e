import { Type } from '../../typebox.ts';
import type { Static, TSchema } from '@sinclair/typebox';
import { ErrorRef, errorResponses, NoBodySchema, StringEnum } from './common.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const ModelSchema = Type.Object({
  id: Type.String(),
  version: Type.Integer({ description: 'Small integer naming the model\'s SID key space in the catalog' }),
  method: Type.String({ description: 'rqkmeans | rqvae | vqvae' }),
  inputDim: Type.Integer(),
  levels: Type.Integer(),
  codebookSizes: Type.Array(Type.Integer()),
  path: Type.String({ description: 'Bundle directory on the server' }),
  sha256: Type.String(),
  metrics: Type.Object({}, { additionalProperties: true, description: 'SID quality metrics from model.json' }),
  status: Type.Union([Type.Literal('registered'), Type.Literal('active'), Type.Literal('retired')]),
  active: Type.Boolean({ description: 'Served now: its key space answers retrieval' }),
  createdAt: Type.String(),
});

export const ListModelsQuerySchema = Type.Object(
  { status: Type.Optional(StringEnum(['registered', 'active', 'retired'])) },
  { additionalProperties: false },
);

export const RegisterModelBodySchema = Type.Object(
  { path: Type.String({ minLength: 1, maxLength: 4096, description: 'Bundle directory, relative to the server\'s model.registryDir' }) },
  { additionalProperties: false },
);

export const ModelParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

export const listModelsRoute = {
  summary: 'Registered models, the active one marked',
  tags: ['models'],
  querystring: ListModelsQuerySchema,
  response: { 200: Type.Object({ active: Type.String(), models: Type.Array(ModelSchema) }), ...errorResponses },
};
export const registerModelRoute = {
  summary: 'Register a model bundle from the models directory (validated: model.json, ONNX loads and encodes, dimension and metric fit)',
  tags: ['models'],
  body: RegisterModelBodySchema,
  response: { 201: ModelSchema, 200: ModelSchema, ...errorResponses },
};
export const activateModelRoute = {
  summary: 'Serve a registered model now (only while the catalog is empty: otherwise re-index, which activates it when done)',
  tags: ['models'],
  params: ModelParamsSchema,
  body: NoBodySchema,
  response: { 200: ModelSchema, 409: ErrorRef, ...errorResponses },
};

export const StabilitySchema = Type.Object({
  compared: Type.Integer(), changed: Type.Integer(), unchanged: Type.Integer(),
  missing: Type.Integer({ description: 'Items without a SID in the new model at the report (encoded in the drop phase)' }),
});

export const JobSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  status: Type.Union(['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
  phase: Type.Union([Type.String(), Type.Null()], {
    description: 'encode -> report -> swap -> drop -> done; cleanup -> done after a cancel or failure before the swap',
  }),
  model: Type.Union([Type.String(), Type.Null()], { description: 'The model being moved to' }),
  fromModel: Type.Union([Type.String(), Type.Null()]),
  processed: Type.Integer({ description: 'Items processed in the current phase; once done, in its last phase (drop: every item)' }),
  total: Nullable(Type.Integer({ description: 'Items in the catalog' })),
  itemsPerSecond: Nullable(Type.Number({
    description: 'Rate of the current phase while running; once done, the rate of its encode phase (null if it ended before that phase did)',
  })),
  etaSeconds: Nullable(Type.Number({ description: 'Until the current phase ends, at the current rate' })),
  error: Type.Union([Type.String(), Type.Null()]),
  stability: Type.Union([StabilitySchema, Type.Null()], { description: 'How many items changed SID (after the report phase)' }),
  mappingFile: Type.Union([Type.String(), Type.Null()], { description: 'Old -> new SID CSV on the server (id,old_sid,new_sid)' }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  shards: Type.Optional(Type.Array(Type.Object({
    shard: Type.Integer(),
    replica: Type.String(),
    status: Type.String(),
    phase: Nullable(Type.String()),
    processed: Type.Integer(),
    total: Nullable(Type.Integer()),
    ready: Type.Boolean({ description: 'Built: waits at (or is past) its swap' }),
    swapped: Type.Boolean({ description: 'Serves the job\'s model' }),
    error: Nullable(Type.String()),
    updatedAt: Type.String(),
  }), { description: 'A cluster re-index (on a router): each shard replica\'s local job; the fields above sum, per shard, its least advanced replica' })),
});

export const ReindexBodySchema = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 128, description: 'A registered model to move the catalog to' }),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Items per committed batch (default reindex.batchSize)' })),
    maxItemsPerSecond: Type.Optional(Type.Integer({ minimum: 1, description: 'Throttle of the encode phase, so serving keeps its CPU' })),
    mapping: Type.Optional(Type.Boolean({ description: 'Write the old -> new SID mapping file' })),
  },
  { additionalProperties: false },
);

export const JobParamsSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const reindexRoute = {
  summary: 'Re-encode every item with another model in the background; the model becomes active when done',
  tags: ['models'],
  body: ReindexBodySchema,
  response: { 202: JobSchema, 409: ErrorRef, ...errorResponses },
};
export const getJobRoute = {
  summary: 'A job: status, phase, processed/total, rate, ETA, error, SID stability',
  tags: ['models'],
  params: JobParamsSchema,
  response: { 200: JobSchema, 404: ErrorRef, ...errorResponses },
};
export const cancelJobRoute = {
  summary: 'Cancel a re-index before its swap (its key space is then removed in the background)',
  tags: ['models'],
  params: JobParamsSchema,
  body: NoBodySchema,
  response: { 200: JobSchema, 404: ErrorRef, 409: ErrorRef, ...errorResponses },
};

export type ReindexBody = Static<typeof ReindexBodySchema>;
