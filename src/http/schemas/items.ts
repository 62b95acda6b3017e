import { Type } from '../../typebox.ts';
import type { Static } from '@sinclair/typebox';
import { EmbeddingRef, ErrorRef, SidRef, errorResponses } from './common.ts';

export const ItemIdSchema = Type.String({ minLength: 1, maxLength: 512, description: 'Caller-chosen item id' });

export const UpsertBodySchema = Type.Object(
  {
    items: Type.Array(
      Type.Object({ id: ItemIdSchema, embedding: EmbeddingRef }, { additionalProperties: false }),
      { minItems: 1 },
    ),
  },
  { additionalProperties: false },
);

export const UpsertResponseSchema = Type.Object({
  model: Type.String(),
  seq: Type.String({ description: 'Change-log sequence number of the committed batch' }),
  items: Type.Array(Type.Object({
    id: Type.String(),
    sid: SidRef,
    replaced: Type.Optional(Type.Boolean({ description: 'The id was there before. Absent only from a cluster router without cluster.waitApplied (not known when it answers)' })),
  })),
});

export const DeleteBodySchema = Type.Object(
  { ids: Type.Array(ItemIdSchema, { minItems: 1 }) },
  { additionalProperties: false },
);

export const DeleteResponseSchema = Type.Object({
  deleted: Type.Integer({ description: 'Ids deleted; on a cluster router, every id logged for deletion (its shards look them up after the answer)' }),
  missing: Type.Array(Type.String(), { description: 'Ids that were not in the catalog (always empty on a cluster router)' }),
});

export const ItemParamsSchema = Type.Object({ id: ItemIdSchema });
export const ItemResponseSchema = Type.Object({ id: Type.String(), sid: SidRef, model: Type.String() });

export const upsertRoute = {
  summary: 'Insert or replace a batch of items (one transaction)',
  tags: ['items'],
  body: UpsertBodySchema,
  response: { 200: UpsertResponseSchema, ...errorResponses },
};
export const deleteRoute = {
  summary: 'Delete a batch of items (one transaction)',
  tags: ['items'],
  body: DeleteBodySchema,
  response: { 200: DeleteResponseSchema, ...errorResponses },
};
export const getItemRoute = {
  summary: 'Look up one item',
  tags: ['items'],
  params: ItemParamsSchema,
  response: { 200: ItemResponseSchema, 404: ErrorRef, ...errorResponses },
};

export type UpsertBody = Static<typeof UpsertBodySchema>;
export type DeleteBody = Static<typeof DeleteBodySchema>;
