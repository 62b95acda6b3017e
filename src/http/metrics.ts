/**
 * GET /metrics (Prometheus text format) and the HTTP-side observations: latency of every request by route
 * pattern, method and status (unmatched URLs share one label, so scanners cannot blow up the series count),
 * and the candidate counts of every retrieve answer (each of a batch's), taken from the payload before it is serialised.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preSerializationHookHandler, RouteHandlerMethod } from 'fastify';
import { Type } from '../typebox.ts';
import type { RouteObservations, SidxMetrics } from '../service/metrics.ts';

export const metricsRoute = {
  summary: 'Prometheus metrics (text exposition format)',
  tags: ['ops'],
  produces: ['text/plain'],
  response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) },
};

/** Milliseconds since the request started (Fastify's clock) when its handler returned; -1 before that. */
const kHandlerDoneMs = Symbol('sidx.handlerDoneMs');
/** The observations of the request's route, set when its handler runs; null before (and for unmatched URLs). */
const kObservations = Symbol('sidx.observations');

declare module 'fastify' {
  interface FastifyRequest {
    [kHandlerDoneMs]: number;
    [kObservations]: RouteObservations | null;
  }
}

/**
 * Each route's observations are bound when it is registered (onRoute), so that a request finds its series without
 * `req.routeOptions` (an object built on every read) or a label key: its handler is wrapped to observe the parse
 * phase, a /v1 route gets a preSerialization hook that marks the handler's end (and reads a retrieve answer's
 * candidates and phases), and the one app-level onResponse hook observes the latency. A request answered before its
 * handler ran (a 4xx from validation or auth, a 404) finds its route the slow way.
 */
export async function registerMetrics(app: FastifyInstance, metrics: SidxMetrics): Promise<void> {
  app.decorateRequest(kHandlerDoneMs, -1);
  app.decorateRequest(kObservations, null);
  app.addHook('onRoute', (route) => {
    const observations = metrics.route(route.url);
    const phased = route.url.startsWith('/v1/');
    const handler = route.handler;
    route.handler = function observed(this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      req[kObservations] = observations;
      if (phased) observations.parse.observe(reply.elapsedTime / 1000);
      return handler.call(this, req, reply);
    } as RouteHandlerMethod;
    if (!phased) return;
    const retrieve = route.url === '/v1/retrieve';
    const batch = route.url === '/v1/retrieve/batch';
    const observeAnswer = (answer: { candidates?: unknown; timingsMs?: unknown }) => {
      const { candidates, timingsMs } = answer;
      if (candidates !== null && typeof candidates === 'object') metrics.observeCandidates(candidates as Record<string, unknown>);
      if (timingsMs !== null && typeof timingsMs === 'object') observations.observePhases(timingsMs as Record<string, number>);
    };
    const own = route.preSerialization === undefined ? [] : [route.preSerialization].flat();
    route.preSerialization = [...own, (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
      req[kHandlerDoneMs] = reply.elapsedTime;
      if ((retrieve || batch) && reply.statusCode === 200 && payload !== null && typeof payload === 'object') {
        if (retrieve) observeAnswer(payload);
        else for (const answer of (payload as { results: { candidates?: unknown; timingsMs?: unknown }[] }).results) observeAnswer(answer);
      }
      done(null, payload);
    }] as preSerializationHookHandler[];
  });
  app.addHook('onResponse', (req, reply, done) => {
    const observations = req[kObservations] ?? metrics.route(req.routeOptions.url ?? 'unmatched');
    const elapsed = reply.elapsedTime;
    observations.duration(req.method, reply.statusCode).observe(elapsed / 1000);
    if (req[kHandlerDoneMs] >= 0) observations.respond.observe((elapsed - req[kHandlerDoneMs]) / 1000);
    done();
  });
  app.get('/metrics', { schema: metricsRoute }, async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
}
