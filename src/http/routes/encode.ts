import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { encodeRoute } from '../schemas/encode.ts';
import { decodeEmbeddings } from '../embedding-input.ts';
import { checkBatch, checkModel, serviceOf } from './service.ts';

export const encodeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/encode', { schema: encodeRoute }, async (req) => {
    const service = serviceOf(app);
    const { embeddings, model } = req.body;
    checkModel(service, model);
    checkBatch(app, embeddings.length, 'embeddings');
    const vectors = decodeEmbeddings(embeddings, service.model.inputDim, app.sidxLimits.maxVectorNorm, (i) => `embeddings[${i}]`);
    const out = await service.encode(vectors, embeddings.length);
    const levels = service.model.levels;
    const sids: number[][] = [];
    for (let i = 0; i < out.n; i++) sids.push(Array.from(out.codes.subarray(i * levels, (i + 1) * levels)));
    return { model: out.model, sids };
  });
};
