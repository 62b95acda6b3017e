import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SidxError } from '../../errors.ts';
import { retrieveRoute, type RetrieveResponse } from '../schemas/retrieve.ts';
import { JSON_TYPE, retrieveAnswerJson } from '../retrieve-json.ts';
import { decodeEmbedding } from '../embedding-input.ts';
import { serviceOf } from './service.ts';

export const retrieveRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/retrieve', { schema: retrieveRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const limits = app.sidxLimits;
    const body = req.body;
    if (body.embedding === undefined && body.sids === undefined) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'give an embedding, sids, or both', { field: 'embedding' });
    }
    const k = body.k ?? 10;
    if (k > limits.maxK) throw new SidxError('SIDX_ERR_INVALID_INPUT', `k must be at most ${limits.maxK}`, { field: 'k' });
    const maxCandidates = body.maxCandidates ?? Math.max(limits.defaultMaxCandidates, k);
    if (maxCandidates > limits.maxCandidates) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `maxCandidates must be at most ${limits.maxCandidates}`, { field: 'maxCandidates' });
    }
    const { levels, codebookSizes } = service.model;
    const sids = body.sids && sidRows(body.sids, levels, codebookSizes);
    if (sids && sids.length > limits.maxBatch) {
      throw new SidxError('SIDX_ERR_BATCH_TOO_LARGE', `sids has ${sids.length} entries, the limit is ${limits.maxBatch}`, { field: 'sids' });
    }
    if (body.expand === 'beam' && body.embedding === undefined) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'expand "beam" needs an embedding', { field: 'embedding' });
    }
    const embedding = body.embedding === undefined ? undefined : decodeEmbedding(body.embedding, service.model.inputDim, limits.maxVectorNorm, 'embedding');
    const out = await service.retrieve({ embedding, sids, k, expand: body.expand, rerank: body.rerank, maxCandidates, beamWidth: body.beamWidth });
    // The answer's JSON is written from the service's output as it is (retrieve-json.ts), to the response schema.
    return reply.type(JSON_TYPE).serializer(retrieveAnswerJson).send(out as unknown as RetrieveResponse);
  });
};

/**
 * The request's SIDs as Int32Arrays, each checked against the model's levels and codebook sizes (a plain loop: no
 * closure per SID nor Int32Array.from's iteration, on the sids-mode path of a generative recommender).
 */
function sidRows(sids: readonly number[][], levels: number, sizes: readonly number[]): Int32Array[] {
  const out = new Array<Int32Array>(sids.length);
  for (let i = 0; i < sids.length; i++) {
    const sid = sids[i]!;
    if (sid.length !== levels) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `sids[${i}] has ${sid.length} codes, the model has ${levels} levels`, { field: `sids[${i}]` });
    }
    const row = new Int32Array(levels);
    for (let l = 0; l < levels; l++) {
      const code = sid[l]!;
      if (code >= sizes[l]!) {
        throw new SidxError('SIDX_ERR_INVALID_INPUT', `sids[${i}][${l}] = ${code} is outside codebook ${l} (size ${sizes[l]})`, { field: `sids[${i}][${l}]` });
      }
      row[l] = code;
    }
    out[i] = row;
  }
  return out;
}
