/**
 * Prometheus metrics (prom-client), one registry per service, exposed by the HTTP layer at GET /metrics.
 *
 * The service observes encode batches, items indexed and job progress; the HTTP layer observes request
 * latency, the candidates of each retrieve and the reads it sheds. Gauges that mirror live state (encoder queue,
 * catalog size, event-loop lag) are read when scraped, through `bind`.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FastHistogram, type HistogramSeries } from './fast-histogram.ts';

export interface LiveState {
  encoderQueueLength(): number;
  encoderInFlight(): number;
  catalogItems(): number;
  /** Items the background layout of the codes has still to place (service/code-layout.ts). */
  layoutPendingItems(): number;
  /** sq8, pq: items whose codes are flagged, re-scored exactly by every rerank (VectorStore.clampedRows). */
  clampedVectorItems(): number;
}

export interface MetricsOptions {
  /** Also collect prom-client's process metrics (CPU, memory, GC, handles): `sidx serve` turns them on. */
  defaultMetrics?: boolean;
}

const SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536];
const PHASE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];
const CANDIDATE_BUCKETS = [0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000];

const UPSERT_PHASES = ['encode', 'lock', 'write', 'commit', 'apply'] as const;

/** One route's per-request observations, each series found once: every request of the route makes them. */
export class RouteObservations {
  /** Request start to handler (body parsing, validation, auth); /v1 routes observe it. */
  readonly parse: HistogramSeries;
  /** Handler end to response sent (serialisation). */
  readonly respond: HistogramSeries;
  readonly #metrics: SidxMetrics;
  readonly #phases = new Map<string, HistogramSeries>();
  /** By method, then by status code. */
  readonly #durations = new Map<string, Map<number, HistogramSeries>>();

  constructor(readonly route: string, metrics: SidxMetrics) {
    this.#metrics = metrics;
    this.parse = this.phase('parse');
    this.respond = this.phase('respond');
  }

  phase(name: string): HistogramSeries {
    let series = this.#phases.get(name);
    if (series === undefined) this.#phases.set(name, series = this.#metrics.requestPhase.series({ route: this.route, phase: name }));
    return series;
  }

  duration(method: string, status: number): HistogramSeries {
    let byStatus = this.#durations.get(method);
    if (byStatus === undefined) this.#durations.set(method, byStatus = new Map());
    let series = byStatus.get(status);
    if (series === undefined) {
      byStatus.set(status, series = this.#metrics.httpDuration.series({ method, route: this.route, status: String(status) }));
    }
    return series;
  }

  /** Service-side phases of one request, from its `timingsMs` (ms; its `total` is not a phase). */
  observePhases(timingsMs: Readonly<Record<string, number>>): void {
    for (const phase in timingsMs) if (phase !== 'total') this.phase(phase).observe(timingsMs[phase]! / 1000);
  }
}

export class SidxMetrics {
  readonly registry = new Registry();
  // Observed on every request: FastHistogram, same exposition as prom-client's.
  readonly httpDuration: FastHistogram<'method' | 'route' | 'status'>;
  readonly requestPhase: FastHistogram<'route' | 'phase'>;
  readonly encodeBatchRows: Histogram;
  readonly encodeSeconds: Histogram;
  readonly encodedItems: Counter;
  readonly encodeItemsPerSecond: Gauge;
  readonly retrieveCandidates: FastHistogram<'kind'>;
  readonly itemsIndexed: Counter<'source'>;
  readonly itemsDeleted: Counter;
  readonly requestsShed: Counter<'route'>;
  /** A cluster router's asks again after a shard refused a query's model (cluster/router-reads.ts), by route. */
  readonly routerSwapRetries: Counter<'route'>;
  readonly jobProcessed: Gauge<'job' | 'kind'>;
  readonly jobTotal: Gauge<'job' | 'kind'>;
  readonly jobItemsPerSecond: Gauge<'job' | 'kind'>;
  #live: LiveState | undefined;
  #loop: IntervalHistogram;
  readonly #routes = new Map<string, RouteObservations>();
  readonly #candidateKinds = new Map<string, HistogramSeries>();

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.httpDuration = new FastHistogram({
      name: 'sidx_http_request_duration_seconds', help: 'HTTP request latency by route and status', registers,
      labelNames: ['method', 'route', 'status'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    });
    this.requestPhase = new FastHistogram({
      name: 'sidx_request_phase_seconds', registers, labelNames: ['route', 'phase'], buckets: PHASE_BUCKETS,
      help: 'Where request time goes: parse (request start to handler: body parsing, validation, auth), the service phases '
        + 'of a retrieve (encode, beam, candidates, rerank, fetch) or of an upsert batch (encode; lock: the wait for the '
        + 'write lock; write: its vectors on disk and its transaction body; commit; apply), respond (handler end to '
        + 'response sent: serialisation)',
    });
    this.encodeBatchRows = new Histogram({
      name: 'sidx_encode_batch_rows', help: 'Rows per encoder call (API encode, retrieve, upsert, re-index)', registers, buckets: SIZE_BUCKETS,
    });
    this.encodeSeconds = new Histogram({
      name: 'sidx_encode_duration_seconds', help: 'Wall time of one encoder call', registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    });
    this.encodedItems = new Counter({ name: 'sidx_encoded_items_total', help: 'Embeddings encoded into SIDs', registers });
    this.encodeItemsPerSecond = new Gauge({
      name: 'sidx_encode_items_per_second', help: 'Throughput of the latest encoder call (rows / wall time)', registers,
    });
    this.retrieveCandidates = new FastHistogram({
      name: 'sidx_retrieve_candidates', help: 'Candidates per retrieve by how they were found (exact, hamming1, beam, total)', registers,
      labelNames: ['kind'], buckets: CANDIDATE_BUCKETS,
    });
    this.itemsIndexed = new Counter({
      name: 'sidx_items_indexed_total', help: 'Items written to the catalog (source: api, reindex)', registers, labelNames: ['source'],
    });
    this.itemsDeleted = new Counter({ name: 'sidx_items_deleted_total', help: 'Items deleted from the catalog', registers });
    this.requestsShed = new Counter({
      name: 'sidx_requests_shed_total', help: 'Reads refused with 503 while the encoder queue was full (limits.maxEncoderQueue)',
      registers, labelNames: ['route'],
    });
    this.routerSwapRetries = new Counter({
      name: 'sidx_router_swap_retries_total', registers, labelNames: ['route'],
      help: 'Cluster router: times a retrieve (route /v1/retrieve) or a retrieve batch (/v1/retrieve/batch) was encoded and asked '
        + 'of the shards again because a shard refused the model it was encoded with (SIDX_ERR_MODEL_SWAP: an active-model flip under way)',
    });
    this.jobProcessed = new Gauge({ name: 'sidx_job_processed_items', help: 'Items processed by a job', registers, labelNames: ['job', 'kind'] });
    this.jobTotal = new Gauge({ name: 'sidx_job_total_items', help: 'Items a job has to process', registers, labelNames: ['job', 'kind'] });
    this.jobItemsPerSecond = new Gauge({
      name: 'sidx_job_items_per_second', help: 'Recent throughput of a running job', registers, labelNames: ['job', 'kind'],
    });
    const live = () => this.#live;
    new Gauge({
      name: 'sidx_encoder_queue_length', help: 'Encoder chunks waiting for a free worker', registers,
      collect() { this.set(live()?.encoderQueueLength() ?? 0); },
    });
    new Gauge({
      name: 'sidx_encoder_in_flight', help: 'Encoder runs on workers (one per busy worker; a run may serve several queued calls)', registers,
      collect() { this.set(live()?.encoderInFlight() ?? 0); },
    });
    new Gauge({
      name: 'sidx_catalog_items', help: 'Items in the catalog', registers,
      collect() { this.set(live()?.catalogItems() ?? 0); },
    });
    new Gauge({
      name: 'sidx_vector_layout_pending_items', registers,
      help: 'Items whose codes the background layout (vectors.layout "sid") has still to move into SID order; 0 when none runs',
      collect() { this.set(live()?.layoutPendingItems() ?? 0); },
    });
    new Gauge({
      name: 'sidx_vector_clamped_items', registers,
      help: 'vectors.storage sq8 and pq: items whose codes are flagged (sq8: a value beyond the ranges fitted on the catalog\'s '
        + 'first items; pq: a residual above the training items\'), each re-scored exactly by every rerank that meets it; a '
        + 'share that keeps rising means the catalog drifted (refit: README, SIDX__VECTORS__TRAIN_SIZE); 0 for f32',
      collect() { this.set(live()?.clampedVectorItems() ?? 0); },
    });
    this.#loop = monitorEventLoopDelay({ resolution: 10 });
    this.#loop.enable();
    const loop = this.#loop;
    new Gauge({
      name: 'sidx_event_loop_lag_seconds', help: 'Event-loop delay since the previous scrape, by quantile', registers,
      labelNames: ['quantile'],
      collect() {
        for (const [q, v] of [['0.5', loop.percentile(50)], ['0.99', loop.percentile(99)], ['1', loop.max]] as const) {
          this.set({ quantile: q }, Number.isFinite(v) ? v / 1e9 : 0);
        }
        loop.reset();
      },
    });
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Where the live gauges read from (the open service); unbound, they read 0. */
  bind(live: LiveState | undefined): void {
    this.#live = live;
  }

  observeEncode(rows: number, seconds: number): void {
    this.encodeBatchRows.observe(rows);
    this.encodeSeconds.observe(seconds);
    this.encodedItems.inc(rows);
    if (seconds > 0) this.encodeItemsPerSecond.set(rows / seconds);
  }

  /** The observations of requests to `route` (a route pattern, or "unmatched"). */
  route(route: string): RouteObservations {
    let observations = this.#routes.get(route);
    if (observations === undefined) this.#routes.set(route, observations = new RouteObservations(route, this));
    return observations;
  }

  /**
   * Service-side phases of one upsert batch, under POST /v1/items whichever way it came in: `marks` are the
   * performance.now() of its phase boundaries (start, encoded, lock taken, body ran, committed, applied).
   */
  observeUpsertPhases(marks: readonly number[]): void {
    const items = this.route('/v1/items');
    for (let i = 0; i < UPSERT_PHASES.length && i + 1 < marks.length; i++) {
      items.phase(UPSERT_PHASES[i]!).observe((marks[i + 1]! - marks[i]!) / 1000);
    }
  }

  observeCandidates(counts: Record<string, unknown>): void {
    for (const kind in counts) {
      const n = counts[kind];
      if (typeof n !== 'number') continue;
      let series = this.#candidateKinds.get(kind);
      if (series === undefined) this.#candidateKinds.set(kind, series = this.retrieveCandidates.series({ kind }));
      series.observe(n);
    }
  }

  jobProgress(job: string, kind: string, processed: number, total: number | null, itemsPerSecond: number | null): void {
    this.jobProcessed.set({ job, kind }, processed);
    if (total !== null) this.jobTotal.set({ job, kind }, total);
    if (itemsPerSecond !== null) this.jobItemsPerSecond.set({ job, kind }, itemsPerSecond);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.#loop.disable();
    this.#live = undefined;
  }
}
