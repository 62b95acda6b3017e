import { buildApp } from '../http/app.ts';
import { loadConfig } from '../config.ts';
import { isSidxError, SidxError } from '../errors.ts';
import type { ShardNode } from '../cluster/shard.ts';
import { SidxService } from '../service/sidx-service.ts';
import { SidxMetrics } from '../service/metrics.ts';
import type { ServiceApi } from '../service/service-api.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';
import { syncDestination } from './log-destination.ts';
import { tuneAllocator } from './allocator.ts';
import { loadFaissBinding } from '../vector/binding.ts';

export const serveUsage = `Usage: sidx serve [--port N] [--host H] [--data-dir DIR] [--model DIR] [--provider cpu|cuda] [--workers N]
                  [--cluster nats://HOST:PORT --role router|shard [--shard I/S] [--replica NAME]]

Starts the HTTP API. Flags override environment variables (SIDX__SERVER__PORT, SIDX__SERVER__HOST,
SIDX__STORAGE__DATA_DIR, SIDX__MODEL__DIR, SIDX__ENCODER__PROVIDER, SIDX__ENCODER__WORKERS), which override
the defaults (127.0.0.1:8080, ./data, the sidx checkout's models/default, cpu, on CPU one worker per two cores: at
least 1, at most 4). A relative --data-dir or --model is relative to the working directory.

Cluster mode (docs/scale.md; SIDX__CLUSTER__URL, __ROLE, __SHARD, __SHARDS, __REPLICA): --role shard holds shard I
of S (its own data directory) and follows that shard's write log on NATS JetStream; --role router serves the
public API over the shards and holds no data (give it --shard 0/S, or SIDX__CLUSTER__SHARDS=S, for S); the model
registry and re-index jobs are in the JetStream KV bucket SIDX__CLUSTER__REGISTRY, a router's API keys in its --data-dir.`;

/** "I/S" -> shard I of S. */
function shardFlag(value: string | undefined): { shard?: number; shards?: number } {
  if (value === undefined) return {};
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m) throw new UsageError(`--shard must be I/S (shard I of S, from 0), got ${JSON.stringify(value)}`);
  return { shard: Number(m[1]), shards: Number(m[2]) };
}

/** Why the server could not listen at host:port, as a refusal that says what to change. */
function listenError(err: unknown, host: string, port: number): SidxError {
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'the address is in use by another process; give another --port (or SIDX__SERVER__PORT)'
    : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges); give another --port'
      : code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine; give another --host (or SIDX__SERVER__HOST)`
        : (err as Error).message;
  const field = code === 'EADDRNOTAVAIL' ? 'server.host' : 'server.port';
  return new SidxError('SIDX_ERR_CONFIG', `cannot listen on ${address}: ${why}`, { field, cause: err });
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    port: { type: 'string' }, host: { type: 'string' }, 'data-dir': { type: 'string' }, model: { type: 'string' },
    provider: { type: 'string' }, workers: { type: 'string' }, cluster: { type: 'string' }, role: { type: 'string' },
    shard: { type: 'string' }, replica: { type: 'string' },
  }, serveUsage);
  if (values.help) {
    console.log(serveUsage);
    return 0;
  }
  const config = loadConfig({
    server: { port: intFlag(values.port, 'port'), host: values.host },
    storage: { dataDir: values['data-dir'] },
    model: { dir: values.model },
    encoder: { provider: values.provider as 'cpu' | 'cuda' | undefined, workers: intFlag(values.workers, 'workers') },
    cluster: { url: values.cluster, role: values.role as 'router' | 'shard' | undefined, ...shardFlag(values.shard), replica: values.replica },
  });
  tuneAllocator(); // before any worker thread starts
  loadFaissBinding().setPoolNice(config.server.threadNice); // the rerank's pool threads; the encoder workers': model-space.ts
  // Listen first so /healthz answers while the model loads; /readyz turns 200 once the service is open.
  const metrics = new SidxMetrics({ defaultMetrics: true });
  // Each log line is written before the log call returns: a kill -9 loses none (log-destination.ts).
  const logger = { level: config.server.logLevel, stream: syncDestination() };
  const app = await buildApp({ service: null, config, metrics, logger });
  try {
    await app.listen({ port: config.server.port, host: config.server.host });
  } catch (err) {
    await app.close();
    metrics.close();
    throw listenError(err, config.server.host, config.server.port);
  }
  let service: ServiceApi;
  let shard: ShardNode | undefined;
  try {
    // The cluster modules (and the NATS client) load only in cluster mode.
    if (config.cluster.role === 'router') {
      const { ClusterRouter } = await import('../cluster/router.ts');
      service = await ClusterRouter.open(config, app.log, metrics);
    } else {
      const shardModule = config.cluster.role === 'shard' ? await import('../cluster/shard.ts') : undefined;
      const node = await SidxService.open(config, app.log, { metrics, command: 'sidx serve' });
      service = node;
      if (shardModule) {
        shard = await shardModule.ShardNode.start(node, config, app.log).catch(async (err: unknown) => {
          await node.close();
          throw err;
        });
      }
    }
  } catch (err) {
    // A refusal (bad bundle, data directory in use, ...) is one line on stderr (main.ts); anything else is a bug: logged with its stack.
    if (!isSidxError(err)) app.log.error({ err }, 'start failed');
    await app.close();
    metrics.close();
    throw isSidxError(err) ? err : new SidxError('SIDX_ERR_INTERNAL', `start failed: ${(err as Error).message}`, { cause: err });
  }
  app.sidx = service;
  service.useClientMix?.(app.severalClients);
  app.log.info(`ready: model ${service.model.id}, ${service.readiness().items} items, data in ${config.storage.dataDir}, `
    + `auth ${config.auth.mode}, rate limit ${config.rateLimit.max > 0 ? `${config.rateLimit.max} per ${config.rateLimit.windowMs} ms` : 'off'}`);

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info(`${signal}: draining requests and closing stores`);
      // Past the timeout, exit anyway: every acknowledged write is already committed (one fsync'd LMDB
      // transaction per batch), and the FAISS index is caught up from the change log at the next start.
      const timeoutMs = config.server.shutdownTimeoutMs;
      const timer = timeoutMs > 0
        ? setTimeout(() => {
          app.log.error(`${signal}: not drained after ${timeoutMs} ms, exiting`);
          process.exit(1);
        }, timeoutMs)
        : undefined;
      timer?.unref();
      // In-flight requests finish (http/connections.ts says what other connections see), then queued writes and
      // running jobs stop at a batch boundary, the vector slot file is synced and the stores close.
      await app.close();
      await shard?.close();
      await service.close();
      metrics.close();
      clearTimeout(timer);
      app.log.info('stopped');
      resolveExit(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
