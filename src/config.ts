/**
 * Service configuration: one schema with defaults, overridden by environment variables named
 * `SIDX__SECTION__KEY` (e.g. `SIDX__SERVER__PORT=9000`), then by explicit overrides (CLI flags).
 * The result is validated and deep-frozen; nothing reads process.env after this.
 */
import type { Static, TSchema, TObject } from '@sinclair/typebox';
import { Type, Value } from './typebox.ts';
import { SidxError } from './errors.ts';
import { repoPath } from './paths.ts';

const Int = (min: number, max: number, dflt: number, description: string) =>
  Type.Integer({ minimum: min, maximum: max, default: dflt, description });

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', description: 'Address to listen on' }),
        port: Int(0, 65535, 8080, 'TCP port (0 = any free port)'),
        bodyLimitBytes: Int(1024, 1 << 30, 64 * 1024 * 1024, 'Largest request body accepted'),
        logLevel: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
        logRequests: Type.Boolean({
          default: false,
          description: 'Log one line per request and per response at info (costs about as much as a whole retrieve on a busy '
            + 'server; errors are always logged)',
        }),
        shutdownTimeoutMs: Int(0, 600_000, 25_000, 'On SIGTERM: longest wait for in-flight requests and writes before exiting anyway'),
        requestTimeoutMs: Int(0, 3_600_000, 120_000,
          'Longest time for a request (headers and body) to arrive whole; past it the connection gets 408 and is closed. 0 = no limit'),
        keepAliveTimeoutMs: Int(1, 3_600_000, 72_000, 'An idle keep-alive connection is closed after this long'),
        threadNice: Int(0, 19, 10,
          'Linux: niceness added to the helper threads of the service (the encoder workers with their ONNX Runtime threads, and '
          + 'the libuv pool threads that score reranks), so that on busy cores the event loop, which every request passes '
          + 'through several times, runs first (docs/benchmarks.md, "Where it stands (stop 33)"). 0 = every thread at the '
          + 'process\'s priority'),
      },
      { additionalProperties: false, default: {} },
    ),
    storage: Type.Object(
      {
        dataDir: Type.String({ default: './data', description: 'LMDB catalog, SQLite control plane, the vector slot file' }),
        mapSizeBytes: Int(1 << 20, Number.MAX_SAFE_INTEGER, 64 * 1024 ** 3, 'LMDB map size (virtual; grows on disk as used)'),
        checkpointEvery: Int(1, 1e9, 50_000, 'Changes between syncs of the vector slot file (in the background; the change log is cut at each)'),
        checkpointGrowthPercent: Int(0, 10_000, 10,
          'Also wait for this percentage of the index size in changes between syncs of the vector slot file, so large '
          + 'catalogs sync less often; the price is a longer change-log replay at restart. 0 = checkpointEvery alone'),
        postingIndex: Type.Union([Type.Literal('memory'), Type.Literal('lmdb')], {
          default: 'memory',
          description: 'Where /v1/retrieve gathers candidates: memory = an in-memory copy of the served key space\'s '
            + 'postings, built from LMDB at start and updated after every committed write (6 x levels + 4 bytes per '
            + 'item); lmdb = one LMDB range scan per SID, prefix or Hamming-1 level. A catalog created under memory stores '
            + 'each SID\'s natural posting alone (its Hamming-1 scans, for the few requests LMDB answers, skip-scan it); '
            + 'opened under lmdb it gets the rotated postings written first',
        }),
        sidHistory: Int(1, 1e9, 100_000,
          'SID count changes kept for GET /v1/sids/trie?since= (one per SID a write transaction changed); a '
          + 'since older than the oldest kept gets a full snapshot'),
      },
      { additionalProperties: false, default: {} },
    ),
    vectors: Type.Object(
      {
        storage: Type.Union([Type.Literal('f32'), Type.Literal('sq8'), Type.Literal('pq')], {
          default: 'sq8',
          description: 'What the rerank scores: f32 = the float32 slot file, mapped read-only from the page cache (no '
            + 'copy in the heap); sq8 = 8-bit scalar-quantised codes in memory (dim bytes per item); pq = FAISS '
            + 'product-quantisation codes in memory (`vectors.pqM` bytes per item); with sq8 and pq the best '
            + '`vectors.rescore` candidates are re-scored exactly from the vector file: sq8 through the shared mapping (the rows '
            + 'it touches count in the RSS as page cache), pq by pread (never mapped: the leanest RSS). sq8 is the default: a '
            + 'quarter of f32\'s bytes read per candidate, 25-45% more retrieves per second under load, nothing lost at the '
            + 'top (docs/benchmarks.md, "Where it stands (stop 27)"); f32 holds no codes in memory',
        }),
        rerankOffThread: Type.Boolean({
          default: true,
          description: 'f32, sq8, pq: while other reads are in flight, a retrieve\'s rerank reads and scores its candidates\' rows (sq8: '
            + 'their codes, then the exact re-score; pq alike) on the libuv thread pool, so the event loop serves them meanwhile (a key written '
            + 'meanwhile is scored again as it is then); a lone f32 retrieve scores half its rows on the event loop and half on one '
            + 'pool thread at the same time, a lone sq8 one on the event loop; false: always on the event loop',
        }),
        rescore: Int(0, 100_000, 0, 'sq8, pq: candidates (best by their code scores) re-scored exactly from the slot file; 0 = the '
          + 'mode\'s default: 50 for sq8, 200 for pq (docs/benchmarks.md, "Compressed vectors")'),
        trainSize: Int(1, 10_000_000, 10_000,
          'sq8: vectors whose per-dimension min/max, widened by a tenth of their span on each side, set the quantiser\'s '
          + 'ranges; pq: vectors the codebooks are trained on (k-means, at least 256 are used); the first this many (spread '
          + 'over the batch that completes them; a rebuild takes them spread over the whole catalog), until then every candidate '
          + 'is scored exactly; kept until a '
          + 'rebuild (sq8: an item with a value beyond the ranges, pq: one whose residual is beyond the held-out training items\' '
          + '(every tenth, from 512 on), is re-scored exactly by every rerank that meets it, and a start warns when more than 5% are)'),
        hugePages: Type.Boolean({
          default: true,
          description: 'sq8, pq: the codes\' memory is advised for transparent huge pages (madvise; the kernel grants them where '
            + '/sys/kernel/mm/transparent_hugepage/enabled is always or madvise). A rerank reads its candidates\' codes at random '
            + 'across all of them, and with 4 KiB pages most of those reads also walk the page tables: at 1M items 2 MiB pages '
            + 'took a fifth to a third off the rerank threads\' CPU per request (docs/benchmarks.md, "Huge pages for the codes"). '
            + 'false: 4 KiB pages',
        }),
        layout: Type.Union([Type.Literal('sid'), Type.Literal('arrival')], {
          default: 'sid',
          description: 'sq8, pq: the order of the codes in memory. sid = moved into the served model\'s SID order in the background '
            + 'after a start and after bursts of writes (in steps between requests; the codes file and the vector file stay as they are), so that a beam '
            + 'rerank, whose candidates come from a few posting ranges, reads runs of consecutive rows instead of one DRAM miss '
            + 'per candidate (docs/benchmarks.md, "Where it stands (stop 43)"); arrival = where their slots are, in arrival order',
        }),
        pqM: Int(0, 65_536, 0,
          'pq: sub-quantizers of 8 bits each, so bytes per item; must divide the model\'s dimension. 0 = dim / 2 (256 at '
          + '512-d; the next coarser divisor when 2 does not divide dim)'),
      },
      { additionalProperties: false, default: {} },
    ),
    model: Type.Object(
      {
        dir: Type.String({
          default: 'models/default',
          description: 'Model bundle served at first start (later: the active model of the registry); the default is the sidx '
            + 'checkout\'s models/default, a value given is relative to the working directory',
        }),
        registryDir: Type.String({ default: 'models', description: 'POST /v1/models registers bundles from paths under this directory only' }),
      },
      { additionalProperties: false, default: {} },
    ),
    encoder: Type.Object(
      {
        provider: Type.Union([Type.Literal('cpu'), Type.Literal('cuda')], { default: 'cpu' }),
        workers: Int(0, 64, 0, 'ONNX Runtime worker threads, one session each (0 = auto: on CPU one per two cores, at least 1 and at '
          + 'most 4, so that the encoder takes at most half the cores and concurrent queries share its runs; sidx index: one per core, '
          + 'at most 4; on CUDA one)'),
        intraOpThreads: Int(0, 256, 0, 'Threads inside each session (0 = auto: cores / (2 x workers) when serving, cores / workers for '
          + 'sidx index; at least 1)'),
        spinWait: Type.Boolean({
          default: true,
          description: 'Let a session\'s intra-op threads spin between runs (ONNX Runtime\'s default): lower latency for small runs '
            + 'with 2+ threads per session, CPU taken from the event loop otherwise (sidx index turns it off)',
        }),
        inline: Type.Boolean({
          default: true,
          description: 'CPU: a lone single-query encode or beam (no other read in flight, no worker busy) runs on the event loop '
            + 'with its own session, saving the two thread hops of a worker call; concurrent ones always go to the workers',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    collisions: Type.Object(
      {
        strategy: Type.Union([Type.Literal('none'), Type.Literal('cap')], {
          default: 'none',
          description: 'cap = FORGE: at most `cap` items per full SID; overflow moves to the nearest free last-level code',
        }),
        cap: Int(1, 1_000_000, 5, 'Items per full SID under the cap strategy'),
      },
      { additionalProperties: false, default: {} },
    ),
    limits: Type.Object(
      {
        maxBatch: Int(1, 1_000_000, 1000, 'Most embeddings or items in one request'),
        maxK: Int(1, 100_000, 1000, 'Largest k accepted by /v1/retrieve'),
        defaultMaxCandidates: Int(1, 10_000_000, 1500, 'Candidate cap when a request names none; when unset, at most limits.maxCandidates'),
        maxCandidates: Int(1, 10_000_000, 100_000, 'Largest candidate cap a request may ask for'),
        maxVectorNorm: Type.Number({
          minimum: 0, maximum: 1e18, default: 1e4,
          description: 'Largest L2 norm of an embedding accepted by POST /v1/items, /v1/retrieve, /v1/encode and sidx index (400 '
            + 'SIDX_ERR_NORM_TOO_LARGE naming the field; sidx index skips such an AL-GR CSV row): keeps scores finite and stops one huge item from topping '
            + 'every inner-product query. 0 = off',
        }),
        maxEncoderQueue: Int(0, 1_000_000, 32,
          'Load shedding: while this many encoder chunks wait for a worker (a one-row encode or retrieve adds one), '
          + '/v1/encode and /v1/retrieve answer 503 SIDX_ERR_OVERLOADED with Retry-After; writes are never shed. A read '
          + 'waits about queue x chunk time / workers: 32 x 8-23 ms (a beam retrieve\'s share of a saturated 2-core host) '
          + '= 0.3-0.7 s; 64 would never shed 64 connections, which queue at most 63. 0 = off'),
      },
      { additionalProperties: false, default: {} },
    ),
    auth: Type.Object(
      {
        mode: Type.Union([Type.Literal('off'), Type.Literal('writes'), Type.Literal('all')], {
          default: 'off',
          description: 'writes: write and admin routes need `Authorization: Bearer <key>` (sidx keys create); all: read routes too',
        }),
        docs: Type.Union([Type.Literal('public'), Type.Literal('read')], {
          default: 'public',
          description: 'public: /docs and /openapi.json never need a key; read: they are read routes (a key under mode all, '
            + 'which the Swagger UI page in a browser does not send)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    rateLimit: Type.Object(
      {
        max: Int(0, 1_000_000_000, 0, 'Requests per window per API key (per client address without a key); 0 = no limit'),
        windowMs: Int(100, 86_400_000, 60_000, 'Rate-limit window'),
      },
      { additionalProperties: false, default: {} },
    ),
    reindex: Type.Object(
      {
        batchSize: Int(1, 1_000_000, 1000, 'Items re-encoded per committed batch (the resume point after a crash)'),
      },
      { additionalProperties: false, default: {} },
    ),
    cluster: Type.Object(
      {
        url: Type.String({ default: '', description: 'NATS server(s) of the cluster, e.g. nats://127.0.0.1:4222 (comma-separated); empty = single node' }),
        role: Type.Union([Type.Literal('single'), Type.Literal('router'), Type.Literal('shard')], {
          default: 'single', description: 'router: serves the public API over the shards (no data); shard: holds shard `shard` of `shards`',
        }),
        shard: Int(0, 4095, 0, 'This shard\'s number, 0 .. shards-1 (role shard)'),
        shards: Int(1, 4096, 1, 'Shards in the cluster (an item\'s shard: FNV-1a of its id modulo this); the same on every node'),
        replica: Type.String({ default: '', description: 'This shard replica\'s name (its durable consumer); default: the host name' }),
        stream: Type.String({ default: 'SIDX_WRITES', pattern: '^[A-Za-z0-9_-]+$', description: 'JetStream stream of the write log' }),
        registry: Type.String({
          default: 'sidx-registry', pattern: '^[A-Za-z0-9_-]+$', description: 'JetStream KV bucket of the model registry, the active model and re-index jobs',
        }),
        streamReplicas: Int(1, 5, 1, 'Replicas of the write log stream and of the registry bucket (JetStream file storage); 3 in a production cluster'),
        requestTimeoutMs: Int(1, 600_000, 2000, 'Router: longest wait for a shard\'s answer; past it the answer is partial'),
        applyBatch: Int(1, 10_000, 64, 'Shard: log messages fetched per pull'),
        waitApplied: Type.Boolean({
          default: false, description: 'Router: a write is answered once one replica of each shard touched has applied it (read-your-writes through it)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type Config = Static<typeof ConfigSchema>;
type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type ConfigOverrides = DeepPartial<Config>;

/** Where an environment variable's value went: field ("section.key") -> the variable and its text. */
type EnvSources = Map<string, { name: string; raw: string }>;

/**
 * Reads `SIDX__SECTION__KEY` variables into a nested object, coercing numbers where the schema asks for them, and
 * notes in `sources` which variable set each field.
 */
function fromEnv(env: NodeJS.ProcessEnv, sources: EnvSources): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const sections = ConfigSchema.properties as Record<string, TObject>;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SIDX__') || raw === undefined) continue;
    const [section, key, ...rest] = name.slice(6).split('__');
    const sectionSchema = sections[camel(section ?? '')];
    const keyName = camel(key ?? '');
    const keySchema: TSchema | undefined = sectionSchema?.properties[keyName];
    if (!sectionSchema || !keySchema || rest.length > 0) {
      throw new SidxError('SIDX_ERR_CONFIG', `unknown configuration variable ${name}`, { field: name });
    }
    const value = keySchema.type === 'integer' || keySchema.type === 'number' ? Number(raw) : keySchema.type === 'boolean' ? envBoolean(raw) : raw;
    (out[camel(section!)] ??= {})[keyName] = value;
    sources.set(`${camel(section!)}.${keyName}`, { name, raw });
  }
  return out;
}

/** "true"/"1" and "false"/"0"; anything else stays a string, which the schema then refuses naming the variable. */
function envBoolean(raw: string): boolean | string {
  const v = raw.trim().toLowerCase();
  return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : raw;
}

function camel(s: string): string {
  return s.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = v && typeof v === 'object' && b && typeof b === 'object' ? merge(b as never, v as never) : v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Defaults <- environment <- overrides; throws SIDX_ERR_CONFIG naming the first bad field. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const envSources: EnvSources = new Map();
  const merged = merge(merge({}, fromEnv(env, envSources)), overrides as Record<string, unknown>);
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(merged));
  const firstError = Value.Errors(ConfigSchema, withDefaults).First();
  if (firstError) {
    const field = firstError.path.replace(/^\//, '').replaceAll('/', '.');
    const [section, key] = field.split('.');
    const overridden = (overrides as Record<string, Record<string, unknown> | undefined>)[section ?? '']?.[key ?? ''] !== undefined;
    // A variable's text, not the number it was coerced to ("abc" became NaN).
    const source = overridden ? undefined : envSources.get(field);
    const got = source ? '' : `, got ${JSON.stringify(firstError.value)}`;
    const allowed = ((firstError.schema.anyOf ?? []) as TSchema[]).map((s) => s.const as unknown).filter((c) => c !== undefined);
    const message = allowed.length > 0
      ? `must be one of ${allowed.map((c) => JSON.stringify(c)).join(', ')}${got}`
      : `${firstError.message.replace(/^Expected integer\b/, 'expected an integer').replace(/^Expected (number|boolean|string)\b/, 'expected a $1')}${got}`;
    const from = source ? ` (from ${source.name}=${JSON.stringify(source.raw)})` : '';
    throw new SidxError('SIDX_ERR_CONFIG', `configuration ${field || '(root)'}${from}: ${message}`, { field });
  }
  const config = withDefaults as Config;
  // Unset, the default cap follows a lower limits.maxCandidates instead of refusing the start.
  const limits = (merged.limits ?? {}) as Partial<Config['limits']>;
  if (limits.defaultMaxCandidates === undefined) {
    config.limits.defaultMaxCandidates = Math.min(config.limits.defaultMaxCandidates, config.limits.maxCandidates);
  }
  // The shipped bundle, wherever sidx is started from.
  if ((merged.model as Partial<Config['model']> | undefined)?.dir === undefined) config.model.dir = repoPath(config.model.dir);
  checkRelations(config);
  return deepFreeze(config);
}

/** Constraints between fields, which the schema cannot state. */
function checkRelations(c: Config): void {
  const { defaultMaxCandidates, maxCandidates } = c.limits;
  const cl = c.cluster;
  if (cl.role !== 'single' && cl.url === '') {
    throw new SidxError('SIDX_ERR_CONFIG', `configuration cluster.role ${cl.role} needs cluster.url (the NATS server)`, { field: 'cluster.url' });
  }
  if (cl.shard >= cl.shards) {
    throw new SidxError('SIDX_ERR_CONFIG', `configuration cluster.shard ${cl.shard} is not below cluster.shards ${cl.shards}`, { field: 'cluster.shard' });
  }
  if (defaultMaxCandidates > maxCandidates) {
    throw new SidxError('SIDX_ERR_CONFIG', `configuration limits.defaultMaxCandidates (${defaultMaxCandidates}) exceeds `
      + `limits.maxCandidates (${maxCandidates}): every /v1/retrieve without maxCandidates would be refused`,
    { field: 'limits.defaultMaxCandidates' });
  }
}
