import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SidxError } from '../../errors.ts';
import type { ServiceApi } from '../../service/service-api.ts';
import type { RetrieveQuery } from '../../service/types.ts';
import type { Config } from '../../config.ts';
import { retrieveBatchRoute, retrieveRoute, type RetrieveBatchResponse, type RetrieveBody, type RetrieveResponse } from '../schemas/retrieve.ts';
import { JSON_TYPE, retrieveAnswerJson, retrieveBatchJson } from '../retrieve-json.ts';
import { decodeEmbedding } from '../embedding-input.ts';
import { checkBatch, serviceOf } from './service.ts';

export const retrieveRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/retrieve', { schema: retrieveRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const out = await service.retrieve(retrieveQuery(req.body, service, app.sidxLimits, ''));
    // The answer's JSON is written from the service's output as it is (retrieve-json.ts), to the response schema.
    return reply.type(JSON_TYPE).serializer(retrieveAnswerJson).send(out as unknown as RetrieveResponse);
  });

  app.post('/retrieve/batch', { schema: retrieveBatchRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const { queries } = req.body;
    checkBatch(app, queries.length, 'queries');
    const checked = queries.map((body, i) => retrieveQuery(body, service, app.sidxLimits, `queries[${i}].`));
    const results = await service.retrieveMany(checked);
    return reply.type(JSON_TYPE).serializer(retrieveBatchJson).send({ results } as unknown as RetrieveBatchResponse);
  });
};

/** A retrieve body checked against the limits and the served model; `at` prefixes the fields that errors name. */
function retrieveQuery(body: RetrieveBody, service: ServiceApi, limits: Config['limits'], at: string): RetrieveQuery {
  if (body.embedding === undefined && body.sids === undefined) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `give ${at ? `${at.slice(0, -1)} ` : ''}an embedding, sids, or both`, { field: `${at}embedding` });
  }
  const k = body.k ?? 10;
  if (k > limits.maxK) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${at}k must be at most ${limits.maxK}`, { field: `${at}k` });
  // Unnamed, the budget holds k at least, within limits.maxCandidates: a request is refused only for a budget it names.
  const maxCandidates = body.maxCandidates ?? Math.min(Math.max(limits.defaultMaxCandidates, k), limits.maxCandidates);
  if (maxCandidates > limits.maxCandidates) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${at}maxCandidates must be at most ${limits.maxCandidates}`, { field: `${at}maxCandidates` });
  }
  const { levels, codebookSizes, inputDim } = service.model;
  const sids = body.sids && sidRows(body.sids, levels, codebookSizes, at);
  if (sids && sids.length > limits.maxBatch) {
    throw new SidxError('SIDX_ERR_BATCH_TOO_LARGE', `${at}sids has ${sids.length} entries, the limit is ${limits.maxBatch}`, { field: `${at}sids` });
  }
  if (body.expand === 'beam' && body.embedding === undefined) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `expand "beam" needs an embedding${at ? ` (${at.slice(0, -1)})` : ''}`, { field: `${at}embedding` });
  }
  const embedding = body.embedding === undefined ? undefined : decodeEmbedding(body.embedding, inputDim, limits.maxVectorNorm, `${at}embedding`);
  return { embedding, sids, k, expand: body.expand, rerank: body.rerank, maxCandidates, beamWidth: body.beamWidth };
}

/**
 * The request's SIDs as Int32Arrays, each checked against the model's levels and codebook sizes (a plain loop: no
 * closure per SID nor Int32Array.from's iteration, on the sids-mode path of a generative recommender).
 */
function sidRows(sids: readonly number[][], levels: number, sizes: readonly number[], at: string): Int32Array[] {
  const out = new Array<Int32Array>(sids.length);
  for (let i = 0; i < sids.length; i++) {
    const sid = sids[i]!;
    if (sid.length !== levels) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${at}sids[${i}] has ${sid.length} codes, the model has ${levels} levels`, { field: `${at}sids[${i}]` });
    }
    const row = new Int32Array(levels);
    for (let l = 0; l < levels; l++) {
      const code = sid[l]!;
      if (code >= sizes[l]!) {
        throw new SidxError('SIDX_ERR_INVALID_INPUT', `${at}sids[${i}][${l}] = ${code} is outside codebook ${l} (size ${sizes[l]})`, { field: `${at}sids[${i}][${l}]` });
      }
      row[l] = code;
    }
    out[i] = row;
  }
  return out;
}
