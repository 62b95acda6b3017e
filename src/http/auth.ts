/**
 * API keys and per-key rate limits, in front of every route.
 *
 * Each route has an access class (`ROUTE_ACCESS`; a /v1 route missing from the table counts as admin, so a new
 * route is closed until classified). With `auth.mode` = `writes`, write and admin routes need
 * `Authorization: Bearer <key>` with a key of at least that scope (read < write < admin); with `all`, read routes
 * too. No header: 401 SIDX_ERR_UNAUTHENTICATED. A key that is unknown, revoked or of too low a scope: 403
 * SIDX_ERR_FORBIDDEN. With auth on, a key sent to a route that does not need one is still checked (a wrong key
 * is a 403 everywhere but the public ops routes), and a valid one names the client for the rate limit. With
 * `off`, the Authorization header is ignored. `/docs` (Swagger UI) and `/openapi.json` are public, or read routes
 * with `auth.docs` = `read`.
 *
 * Rate limit (@fastify/rate-limit, `rateLimit.max` per `rateLimit.windowMs`, off at 0): counted per API key,
 * or per client address when the request carries none; public ops routes are never limited. It runs after the
 * key check (route-level onRequest hooks run after this app-level one), so a 401/403 costs no quota.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import { ErrorRef } from './schemas/common.ts';

export type Access = 'public' | 'read' | 'write' | 'admin';

/** `METHOD url-pattern` -> access class. */
export const ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /openapi.json': 'public',
  'POST /v1/encode': 'read',
  'POST /v1/retrieve': 'read',
  'POST /v1/retrieve/batch': 'read',
  'GET /v1/items/:id': 'read',
  'POST /v1/sids/next': 'read',
  'GET /v1/sids/trie': 'read',
  'POST /v1/items': 'write',
  'POST /v1/items/delete': 'write',
  'GET /v1/models': 'admin',
  'POST /v1/models': 'admin',
  'POST /v1/models/:id/activate': 'admin',
  'POST /v1/reindex': 'admin',
  'GET /v1/jobs/:id': 'admin',
  'POST /v1/jobs/:id/cancel': 'admin',
};

const RANK: Record<Access, number> = { public: 0, read: 1, write: 2, admin: 3 };

export function accessOf(method: string, url: string | undefined): Access {
  if (url === undefined) return 'public'; // no route: the 404 handler answers
  const known = ROUTE_ACCESS[`${method} ${url}`];
  if (known) return known;
  if (method === 'HEAD') return ROUTE_ACCESS[`GET ${url}`] ?? (url.startsWith('/v1') ? 'admin' : 'public');
  return url.startsWith('/v1') ? 'admin' : 'public';
}

/** Checks an API key: the service (which owns the control plane) answers. */
export interface KeyVerifier {
  verifyKey(key: string): { ok: true; id: string; scope: 'read' | 'write' | 'admin' } | { ok: false; reason: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Id of the API key the request authenticated with, or null. */
    apiKeyId: string | null;
  }
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** The API description: the Swagger UI under /docs and the OpenAPI document. */
function isDocs(url: string | undefined): boolean {
  return url === '/openapi.json' || url === '/docs' || url?.startsWith('/docs/') === true;
}

function needsKey(mode: Config['auth']['mode'], access: Access): boolean {
  if (mode === 'off' || access === 'public') return false;
  return access !== 'read' || mode === 'all';
}

export async function registerAuth(app: FastifyInstance, config: Readonly<Config>, verifier: () => KeyVerifier | null): Promise<void> {
  app.decorateRequest('apiKeyId', null);
  const routeAccess = (req: FastifyRequest): Access =>
    (isDocs(req.routeOptions.url) ? config.auth.docs : accessOf(req.method, req.routeOptions.url));
  const checkKey = (req: FastifyRequest): void => {
    const access = routeAccess(req);
    if (access === 'public') return;
    const header = req.headers.authorization;
    const required = needsKey(config.auth.mode, access);
    if (header === undefined) {
      if (required) throw new SidxError('SIDX_ERR_UNAUTHENTICATED', 'this route needs an API key: send Authorization: Bearer <key>', { field: 'authorization' });
      return;
    }
    const m = BEARER.exec(header);
    if (!m) throw new SidxError('SIDX_ERR_UNAUTHENTICATED', 'the Authorization header must read "Bearer <key>"', { field: 'authorization' });
    const keys = verifier();
    if (!keys) throw new SidxError('SIDX_ERR_NOT_READY', 'service is not ready');
    const check = keys.verifyKey(m[1]!);
    if (!check.ok) throw new SidxError('SIDX_ERR_FORBIDDEN', `the API key is ${check.reason}`, { field: 'authorization' });
    if (required && RANK[check.scope] < RANK[access]) {
      throw new SidxError('SIDX_ERR_FORBIDDEN', `the API key has scope ${check.scope}; this route needs ${access}`, { field: 'authorization' });
    }
    req.apiKeyId = check.id;
  };
  // A callback hook, like the app's others: an async one costs every request a promise and a microtask turn. With
  // auth off there is no hook for every request to run (the Authorization header is left to a proxy that may use it).
  if (config.auth.mode !== 'off') app.addHook('onRequest', (req, _reply, done) => {
    try {
      checkKey(req);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });

  if (config.rateLimit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimit.max,
      timeWindow: config.rateLimit.windowMs,
      keyGenerator: (req) => (req.apiKeyId ? `key:${req.apiKeyId}` : `ip:${req.ip}`),
      allowList: (req) => routeAccess(req) === 'public',
      errorResponseBuilder: (_req, ctx) =>
        new SidxError('SIDX_ERR_RATE_LIMITED', `more than ${ctx.max} requests in the rate-limit window; retry in ${ctx.after}`),
    });
  }
}

/** @fastify/swagger `transform`: documents the bearer scheme and the 401/403/429 answers of each protected route. */
export function documentAuth({ schema, url, route }: { schema: Record<string, unknown>; url: string; route: { method: string | string[] } }) {
  const method = Array.isArray(route.method) ? route.method[0]! : route.method;
  const access = accessOf(method, url.replace(/\{([^}]+)\}/g, ':$1'));
  if (!schema || access === 'public') return { schema, url };
  const response = { ...(schema.response as Record<string, unknown> | undefined), 401: ErrorRef, 403: ErrorRef, 429: ErrorRef };
  // Read routes need a key only with auth.mode = all: the empty requirement says "or none".
  const security = access === 'read' ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }];
  return { schema: { ...schema, response, security }, url };
}

export const bearerScheme = {
  bearerAuth: {
    type: 'http' as const,
    scheme: 'bearer',
    description: 'An API key from `sidx keys create` (needed when auth.mode is writes or all; scopes read < write < admin)',
  },
};
