/**
 * The Fastify app factory. It never listens: `sidx serve` does, and tests use `inject` or listen on loopback.
 * Route schemas are the OpenAPI source (`sidx openapi` writes openapi/openapi.json from them).
 */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from '../config.ts';
import type { ServiceApi } from '../service/service-api.ts';
import { errorHandler, frameworkErrorHandler, notFoundHandler } from './errors.ts';
import { optionalNoBody, sharedSchemas } from './schemas/common.ts';
import { healthRoutes } from './routes/health.ts';
import { encodeRoutes } from './routes/encode.ts';
import { retrieveRoutes } from './routes/retrieve.ts';
import { retrieveSchemas } from './schemas/retrieve.ts';
import { itemRoutes } from './routes/items.ts';
import { modelRoutes } from './routes/models.ts';
import { sidRoutes } from './routes/sids.ts';
import { SidxMetrics } from '../service/metrics.ts';
import { bearerScheme, documentAuth, registerAuth } from './auth.ts';
import { registerMetrics } from './metrics.ts';
import { registerJsonBodyParser } from './json-body.ts';
import { registerLoadShedding } from './load-shed.ts';
import { connectionOptions, registerConnections } from './connections.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The service behind the routes; null while starting (or when the app is built only for its OpenAPI). */
    sidx: ServiceApi | null;
    sidxLimits: Config['limits'];
    sidxMetrics: SidxMetrics;
    /** Whether the last requests came over several client connections (connections.ts; a single node's lone path asks). */
    severalClients: () => boolean;
  }
}

export interface AppDeps {
  service: ServiceApi | null;
  config: Readonly<Config>;
  logger?: FastifyServerOptions['logger'];
  /** Default: the service's metrics (or a fresh registry when there is no service yet). */
  metrics?: SidxMetrics;
}

export const API_VERSION = '0.1.0';

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger ?? false,
    // 5xx are logged by errors.ts whatever this says.
    logController: new LogController({ disableRequestLogging: !deps.config.server.logRequests }),
    bodyLimit: deps.config.server.bodyLimitBytes,
    // Item ids may be 512 bytes, up to ~1,536 characters percent-encoded in GET /v1/items/{id}.
    routerOptions: { maxParamLength: 2048 },
    frameworkErrors: frameworkErrorHandler,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } },
    ...connectionOptions(deps.config.server),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('sidx', deps.service);
  // connections.ts: what requests and connections see on close, and which clients the last requests came from
  app.decorate('severalClients', registerConnections(app));
  deps.service?.useClientMix?.(app.severalClients);
  app.decorate('sidxLimits', deps.config.limits);
  app.decorate('sidxMetrics', deps.metrics ?? deps.service?.metrics ?? new SidxMetrics());
  if (!deps.metrics && !deps.service) app.addHook('onClose', async () => app.sidxMetrics.close());
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  registerJsonBodyParser(app);
  // Bodies are JSON only: a JSON body sent as text/plain gets the 415 that says so (errors.ts), not "body must be object".
  app.removeContentTypeParser('text/plain');
  for (const schema of [...sharedSchemas, ...retrieveSchemas]) app.addSchema(schema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'sidx',
        version: API_VERSION,
        description: 'Semantic IDs for generative retrieval: encode embeddings into SIDs, retrieve items by SID.',
      },
      tags: [
        { name: 'encode', description: 'Embeddings to SIDs' },
        { name: 'retrieve', description: 'Candidate generation and rerank' },
        { name: 'items', description: 'Catalog writes and reads' },
        { name: 'sids', description: 'The catalog\'s SID trie, for generators that must emit existing SIDs' },
        { name: 'models', description: 'Model registry and re-index jobs' },
        { name: 'ops', description: 'Health, readiness and metrics' },
      ],
      components: { securitySchemes: bearerScheme },
    },
    transform: documentAuth as never,
    transformObject: optionalNoBody as never,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await registerAuth(app, deps.config, () => app.sidx);
  registerLoadShedding(app, deps.config.limits.maxEncoderQueue);
  await registerMetrics(app, app.sidxMetrics);
  await app.register(healthRoutes);
  await app.register(encodeRoutes, { prefix: '/v1' });
  await app.register(retrieveRoutes, { prefix: '/v1' });
  await app.register(itemRoutes, { prefix: '/v1' });
  await app.register(sidRoutes, { prefix: '/v1' });
  await app.register(modelRoutes, { prefix: '/v1' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** The OpenAPI document as committed in openapi/openapi.json (stable key order, trailing newline). */
export async function renderOpenApi(config: Readonly<Config>): Promise<string> {
  const app = await buildApp({ service: null, config });
  await app.ready();
  const doc = JSON.stringify(app.swagger(), null, 2) + '\n';
  await app.close();
  return doc;
}
