import { Type } from '../../typebox.ts';
import type { Static } from '@sinclair/typebox';
import { EmbeddingRef, SidRef, sheddableErrorResponses } from './common.ts';

export const EncodeBodySchema = Type.Object(
  {
    embeddings: Type.Array(EmbeddingRef, { minItems: 1, description: 'Embeddings to encode' }),
    model: Type.Optional(Type.String({ description: 'Model id; must be the active model when given' })),
  },
  { additionalProperties: false },
);

export const EncodeResponseSchema = Type.Object({
  model: Type.String(),
  sids: Type.Array(SidRef),
});

export const encodeRoute = {
  summary: 'Encode embeddings into semantic IDs (no write)',
  tags: ['encode'],
  body: EncodeBodySchema,
  response: { 200: EncodeResponseSchema, ...sheddableErrorResponses },
};

export type EncodeBody = Static<typeof EncodeBodySchema>;
