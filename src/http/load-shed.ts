/**
 * Load shedding. While the served model's encoder queue holds `limits.maxEncoderQueue` chunks or more, a read
 * route that would wait in it answers 503 SIDX_ERR_OVERLOADED with `retry-after` at once, from an onRequest hook:
 * before its body is read or parsed, and before the rate limit counts it (the key check still comes first).
 * Writes are never shed: an acknowledged write matters more than a fast read, so upserts keep queueing.
 *
 * The shed routes are exactly those whose schema declares ShedErrorRef as their 503 (/v1/encode, /v1/retrieve, /v1/retrieve/batch).
 * The decision is per route, before the body is known, so a retrieve by `sids` alone is shed too. GET
 * /v1/items/{id} is not shed: it never waits for the encoder, and refusing it costs as much as answering it.
 * Requests whose bodies are still being read when the queue fills were admitted already: a burst can overshoot
 * the limit by that many chunks.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler } from 'fastify';
import { SidxError } from '../errors.ts';
import { ShedErrorRef } from './schemas/common.ts';

/** What a shed read is told; the queue drains in about this long at the default limit (see config.ts). */
export const RETRY_AFTER_SECONDS = 1;

export function registerLoadShedding(app: FastifyInstance, limit: number): void {
  if (limit === 0) return;
  function shed(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const queued = app.sidx?.encoderQueueLength ?? 0;
    if (queued < limit) return done();
    app.sidxMetrics.requestsShed.inc({ route: req.routeOptions.url ?? 'unmatched' });
    void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    done(new SidxError('SIDX_ERR_OVERLOADED',
      `overloaded: ${queued} encoder chunks are waiting (limit ${limit}); retry in ${RETRY_AFTER_SECONDS} s`));
  }
  app.addHook('onRoute', (route) => {
    const response = route.schema?.response as Record<string, unknown> | undefined;
    if (response?.[503] !== ShedErrorRef) return;
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [shed as onRequestHookHandler, ...own];
  });
}
