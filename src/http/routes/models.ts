import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  activateModelRoute, cancelJobRoute, getJobRoute, listModelsRoute, registerModelRoute, reindexRoute,
} from '../schemas/models.ts';
import { serviceOf } from './service.ts';

/** Actions without input take no body or `{}` (their schema refuses any field): a missing body validates as `{}`. */
const noBody = {
  preValidation: async (req: { body: unknown }) => {
    if (req.body === undefined) req.body = {};
  },
};

/** Model registry, re-index jobs (admin routes: see auth.ts). */
export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/models', { schema: listModelsRoute }, async (req) => {
    const service = serviceOf(app);
    return { active: service.model.id, models: await service.listModels(req.query.status) };
  });

  app.post('/models', { schema: registerModelRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const known = new Set((await service.listModels()).map((m) => m.id));
    const model = await service.registerModel(req.body.path);
    return reply.status(known.has(model.id) ? 200 : 201).send(model);
  });

  app.post('/models/:id/activate', { schema: activateModelRoute, ...noBody }, async (req) => serviceOf(app).activateModel(req.params.id));

  app.post('/reindex', { schema: reindexRoute }, async (req, reply) => {
    const job = await serviceOf(app).startReindex(req.body);
    return reply.status(202).header('location', `/v1/jobs/${job.id}`).send(job);
  });

  app.get('/jobs/:id', { schema: getJobRoute }, async (req) => serviceOf(app).getJob(req.params.id));

  app.post('/jobs/:id/cancel', { schema: cancelJobRoute, ...noBody }, async (req) => serviceOf(app).cancelJob(req.params.id));
};
