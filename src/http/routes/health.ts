import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { healthRoute, readyRoute } from '../schemas/health.ts';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: healthRoute }, async () => ({ status: 'ok' as const }));
  app.get('/readyz', { schema: readyRoute }, async (_req, reply) => {
    const r = app.sidx?.readiness() ?? { ready: false, model: null, provider: null, items: 0, vectors: 0 };
    const payload = { status: r.ready ? ('ready' as const) : ('not ready' as const), model: r.model, provider: r.provider, items: r.items, vectors: r.vectors };
    return reply.status(r.ready ? 200 : 503).send(payload);
  });
};
