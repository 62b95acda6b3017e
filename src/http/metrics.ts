/**
 * GET /metrics (Prometheus text format) and the HTTP-side observations: latency of every request by route
 * pattern, method and status (unmatched URLs share one label, so scanners cannot blow up the series count),
 * and the candidate counts of every retrieve answer, taken from the payload before it is serialised.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from '../typebox.ts';
import type { SidxMetrics } from '../service/metrics.ts';

export const metricsRoute = {
  summary: 'Prometheus metrics (text exposition format)',
  tags: ['ops'],
  produces: ['text/plain'],
  response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) },
};

/** Milliseconds since the request started (Fastify's clock) when its handler returned; -1 before that. */
const kHandlerDoneMs = Symbol('sidx.handlerDoneMs');

declare module 'fastify' {
  interface FastifyRequest {
    [kHandlerDoneMs]: number;
  }
}

export async function registerMetrics(app: FastifyInstance, metrics: SidxMetrics): Promise<void> {
  app.decorateRequest(kHandlerDoneMs, -1);
  app.addHook('preHandler', (req, reply, done) => {
    const route = req.routeOptions.url;
    if (route !== undefined && route.startsWith('/v1/')) metrics.requestPhase.observe({ route, phase: 'parse' }, reply.elapsedTime / 1000);
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (req[kHandlerDoneMs] >= 0 && route.startsWith('/v1/')) {
      metrics.requestPhase.observe({ route, phase: 'respond' }, (reply.elapsedTime - req[kHandlerDoneMs]) / 1000);
    }
    done();
  });
  app.addHook('preSerialization', (req, reply, payload: unknown, done) => {
    req[kHandlerDoneMs] = reply.elapsedTime;
    if (req.routeOptions.url === '/v1/retrieve' && reply.statusCode === 200 && payload !== null && typeof payload === 'object') {
      const { candidates, timingsMs } = payload as { candidates?: unknown; timingsMs?: unknown };
      if (candidates !== null && typeof candidates === 'object') metrics.observeCandidates(candidates as Record<string, unknown>);
      if (timingsMs !== null && typeof timingsMs === 'object') metrics.observeRetrievePhases('/v1/retrieve', timingsMs as Record<string, number>);
    }
    done(null, payload);
  });
  app.get('/metrics', { schema: metricsRoute }, async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
}
