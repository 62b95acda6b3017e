/**
 * The use-cases behind the API: encode, retrieve, upsert, delete, get, and (lifecycle.ts) the model registry and
 * re-index jobs. Owns the lifecycle of the stores, the encoder pools and the derived vector index.
 *
 * Write path: encode outside the lock, then under the write lock commit one LMDB transaction (items,
 * postings, change log) and only after it write the vector slot file (vector-state.ts). A crash between the two
 * is repaired at the next start by replaying the change log. The commit itself updates the in-memory posting index
 * that retrieve gathers candidates from (live-postings.ts; rebuilt from LMDB at start).
 *
 * Models: one is served (its key space answers retrieval); during a re-index upserts also write the target's key
 * space. The served model changes only in `#swap`, between reads (ReadGate) and between writes (WriteLock); an
 * upsert encoded with a model that is no longer current is encoded again (`#generation`).
 */
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import { applyCollisionPolicy, encodeOptionsFor } from './collision-policy.ts';
import type { EncodeResult } from '../tokenizer/encoder-pool.ts';
import { CandidateSet, CandidateSetPool } from './candidate-set.ts';
import { checkEach, encodeEach, retrieveOne, withSharedEncode, type RetrieveParts } from './retrieve-one.ts';
import { retrieveBatch, type BatchEach, type BatchRetrieveQuery } from './retrieve-batch.ts';
import { checkpointThreshold, type Logger } from './vector-state.ts';
import { WriteLock } from './write-lock.ts';
import type { SidxMetrics } from './metrics.ts';
import type { ActiveModel, ModelSpace } from './model-space.ts';
import { ReadGate } from './read-gate.ts';
import { Lifecycle, type ModelView, type ReindexRequest } from './lifecycle.ts';
import type { JobView, ReindexHost } from './reindex-job.ts';
import { SidReads } from './sid-reads.ts';
import type { OpenOptions, Parts } from './service-parts.ts';
import { openParts } from './service-open.ts';
import type { DeleteOutput, EncodeOutput, ItemView, LogPosition, ModelInfo, Readiness, RetrieveOutput, RetrieveQuery, UpsertChecks, UpsertItem, UpsertOutput } from './types.ts';

export type { ActiveModel } from './model-space.ts';
export type { JobView } from './reindex-job.ts';
export type { ModelView, ReindexRequest } from './lifecycle.ts';
export type { OpenOptions } from './service-parts.ts';

/** Test-only hooks (white-box tests reach them through this symbol). */
export const kServiceTestHooks = Symbol('sidx.service.testHooks');

/** Most queries of one retrieveMany in flight at once: a large batch leaves the pool threads to other requests too. */
const BATCH_LANES = 64;

export class SidxService {
  #p: Parts;
  #lock = new WriteLock();
  #gate = new ReadGate();
  #severalClients: () => boolean = () => false;
  #closed = false;
  /** Re-index target: upserts write its key space too. */
  #target: ModelSpace | null = null;
  /** Bumped whenever the models an upsert must encode with change. */
  #generation = 0;
  #life: Lifecycle;
  /** Every retrieve's candidates, reused: gathering, scoring and fetching them is one synchronous stretch. */
  #candidates = new CandidateSet();
  /**
   * Sets of the retrieves whose rerank awaits a pool thread (each its own), reused by later ones: up to as many as
   * batches keep in flight (32 connections with 32 queries each: 1,024 sets, at most ~34 MB kept), so that sets do not
   * become garbage under batch load (the V8 helper threads' CPU per query halved in bench/serve-profile.bench.ts --batch).
   */
  #spareSets = new CandidateSetPool(1024);
  #servedParts: RetrieveParts | undefined;
  /** Whether a re-index may swap now (cluster shards: set by cluster/shard-models.ts; none: only a single node swaps). */
  #swapGate: ((id: string, model: string) => boolean) | null = null;
  /** The catalog's SID trie (`/v1/sids/*`) of the served model or the re-index target. */
  readonly sids: SidReads;

  private constructor(parts: Parts) {
    this.#p = parts;
    this.#life = new Lifecycle(this.#host());
    this.sids = new SidReads({
      catalog: parts.catalog, control: parts.control, served: () => this.#p.model, target: () => this.#target?.info ?? null,
    });
  }

  /** The served model. */
  get model(): ActiveModel {
    return this.#p.model;
  }

  /** Opens the stores, the served model's encoder pool and the derived indexes (service-open.ts), then resumes jobs. */
  static async open(config: Readonly<Config>, log: Logger, options: OpenOptions = {}): Promise<SidxService> {
    const service = new SidxService(await openParts(config, log, options));
    service.#p.metrics.bind({
      encoderQueueLength: () => service.#p.pool.queueLength + (service.#target?.pool.queueLength ?? 0),
      encoderInFlight: () => service.#p.pool.inFlight + (service.#target?.pool.inFlight ?? 0),
      catalogItems: () => (service.#closed ? 0 : service.#p.catalog.count),
      layoutPendingItems: () => service.#p.layout?.pending ?? 0,
      clampedVectorItems: () => (service.#closed ? 0 : service.#p.vectors.store.clampedRows?.() ?? 0),
    });
    try {
      await service.#life.resume();
    } catch (err) {
      await service.close();
      throw err;
    }
    return service;
  }

  get metrics(): SidxMetrics { return this.#p.metrics; }

  /** Chunks waiting for a worker of the served model's encoder, the queue every encode and retrieve joins. */
  get encoderQueueLength(): number { return this.#p.pool.queueLength; }

  /** Test-only: the served model's encoder pool (white-box tests hold its queue through kPoolTestHooks), the live postings, the vector store and its layout. */
  get [kServiceTestHooks]() {
    return { pool: () => this.#p.pool, vectorsIdle: () => this.#p.vectors.idle(), postings: () => this.#p.postings, vectors: () => this.#p.vectors.store, layout: () => this.#p.layout };
  }

  /** Checks an API key against the control plane (constant-time; see store/api-keys.ts). */
  verifyKey(key: string) {
    this.#assertOpen();
    return this.#p.control.keys.verify(key);
  }

  get ready(): boolean { return !this.#closed; } // readiness() also counts the catalog: too slow per request

  readiness(): Readiness {
    const p = this.#p;
    if (this.#closed) return { ready: false, model: null, provider: null, items: 0, vectors: 0 };
    return { ready: true, model: this.model.id, provider: p.pool.provider, items: p.catalog.count, vectors: p.vectors.store.ntotal };
  }

  encode(vectors: Float32Array, n: number): Promise<EncodeOutput> {
    return this.#gate.run(async () => {
      const out = await this.#p.pool.encode(vectors, n, { inline: this.#alone, codesOnly: true });
      return { model: this.model.id, codes: out.codes, n };
    });
  }

  /** Reads see one model from encoding to candidates: a swap waits for them (ReadGate). */
  retrieve(q: RetrieveQuery): Promise<RetrieveOutput> {
    return this.#gate.run(() => retrieveOne(this.#served(), q));
  }

  /**
   * The queries of one request (POST /v1/retrieve/batch), answered by one model: each as `retrieve` answers it, all in
   * flight together: their encoder rows go to the pool as one call per kind (retrieve-one.ts encodeEach), their reranks
   * to the pool each. None runs on the event loop as a lone read would: the others wait for it.
   */
  retrieveMany(qs: readonly RetrieveQuery[]): Promise<RetrieveOutput[]> {
    return this.#gate.run(async () => {
      const expands = checkEach(this.#p.pool, qs);
      if (qs.length === 1) return [await retrieveOne(this.#served(), qs[0]!, expands[0])];
      const { queries, shared } = await encodeEach(this.#p.pool, this.model.metric, qs, expands);
      const parts = this.#retrieveParts(() => false);
      const out = new Array<RetrieveOutput>(queries.length);
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < queries.length; i = next++) out[i] = withSharedEncode(await retrieveOne(parts, queries[i]!, expands[i]), shared[i]);
      };
      await Promise.all(Array.from({ length: Math.min(BATCH_LANES, queries.length) }, lane));
      return out;
    });
  }

  /** `retrieve` for many embeddings in batches, on the catalog as of the call; a model swap waits (retrieve-batch.ts). */
  retrieveEach(q: BatchRetrieveQuery, each: BatchEach): Promise<void> {
    return this.#gate.run(() => retrieveBatch({
      model: this.model, pool: this.#p.pool, catalog: this.#p.catalog, scorer: this.#p.vectors.store, postings: this.#p.postings.index(this.model.version),
    }, q, each));
  }

  /** The parts a retrieve reads, asking whether it is alone; built again only when one of them changed (a swap). */
  #served(): RetrieveParts {
    const p = this.#p;
    const c = this.#servedParts;
    if (c?.model === p.model && c.pool === p.pool && c.store === p.vectors.store && c.postings === p.postings && c.catalog === p.catalog) return c;
    return (this.#servedParts = this.#retrieveParts(() => this.#alone));
  }

  #retrieveParts(alone: () => boolean): RetrieveParts {
    const p = this.#p;
    return {
      model: p.model, pool: p.pool, postings: p.postings, store: p.vectors.store, catalog: p.catalog, rerankOffThread: p.config.vectors.rerankOffThread,
      candidates: this.#candidates, spareSets: this.#spareSets, alone,
    };
  }

  /**
   * Encodes with the served model (and the re-index target, if any) outside the lock while the vectors go to the
   * vector file (they do not depend on the SIDs: Catalog.stageBatch), then writes under it, pipelined: the lock
   * passes to the next upsert once this batch's transaction body has run, while its commit completes on lmdb-js's
   * write thread; the vector store is updated and the answer given after the commit. If the models changed meanwhile
   * (a swap, a re-index starting or ending), encodes again: nothing is written with a model that is no longer
   * current. The cap collision policy reads committed occupancy, so it waits for earlier commits.
   */
  async upsert(items: UpsertItem[], log?: LogPosition, checked?: UpsertChecks): Promise<UpsertOutput> {
    const staged = this.#p.catalog.stageBatch(items, this.model.inputDim, checked?.finite); // a batch it refuses is neither encoded nor written
    const { dim, vectors: flat } = staged;
    const prepared = this.#p.vectors.prepare(flat); // pq's codes on the libuv pool, beside the SID encode
    try {
      for (;;) {
        const generation = this.#generation;
        const model = this.model;
        const target = this.#target;
        const marks = [performance.now()]; // phase boundaries (metrics.observeUpsertPhases)
        const how = encodeOptionsFor(this.#p.config.collisions);
        const [enc, encTarget, ahead] = await Promise.all([this.#p.pool.encode(flat, items.length, how), target?.pool.encode(flat, items.length, how), prepared]);
        marks.push(performance.now());
        const out = await this.#lock.pipeline(async () => {
          marks.push(performance.now());
          this.#assertOpen();
          if (generation !== this.#generation) return { finish: Promise.resolve(null) };
          if (this.#p.config.collisions.strategy !== 'none') await this.#lock.finished();
          const L = model.levels;
          const codes = this.#applyCollisionPolicy(enc, items.length, model);
          const batch = items.map((it, i) => ({ id: it.id, vector: flat.subarray(i * dim, (i + 1) * dim), codes: codes.subarray(i * L, (i + 1) * L) }));
          let alt: { model: number; codes: Int32Array[] } | undefined;
          if (target && encTarget) {
            const tc = this.#applyCollisionPolicy(encTarget, items.length, target.info);
            const TL = target.info.levels;
            alt = { model: target.info.version, codes: items.map((_it, i) => tc.subarray(i * TL, (i + 1) * TL)) };
          }
          const { committed } = await this.#p.catalog.upsertBatchPipelined(model.version, batch, alt, log?.seq, staged);
          marks.push(performance.now());
          const finish = committed.then((res): UpsertOutput => {
            marks.push(performance.now());
            this.#p.vectors.applyUpsert(res.keys, res.slots, flat, res.seq, ahead);
            this.#p.metrics.observeUpsertPhases([...marks, performance.now()]);
            this.#p.metrics.itemsIndexed.inc({ source: 'api' }, items.length);
            this.#maybeCheckpoint();
            return { model: model.id, seq: res.seq, items: batch.map((b, i) => ({ id: b.id, sid: b.codes.slice(), replaced: res.replaced[i]! })) };
          });
          return { finish };
        });
        if (out) return out;
      }
    } finally {
      await prepared.then(() => staged.release()); // prepare reads `flat` until it settles
    }
  }

  async delete(ids: string[], log?: LogPosition): Promise<DeleteOutput> {
    return this.#lock.run(async () => {
      this.#assertOpen();
      const res = this.#p.catalog.stream.within(log?.seq, () => this.#p.catalog.deleteBatch(ids));
      this.#p.vectors.applyDelete(res.removed, res.seq);
      this.#p.metrics.itemsDeleted.inc(res.removed.length);
      this.#maybeCheckpoint();
      return { seq: res.seq, deleted: res.removed.length, missing: res.missing };
    });
  }

  /** The cluster write log's position this catalog has applied (0 when none; cluster/shard.ts). */
  get appliedLogSeq(): bigint {
    return this.#p.catalog.stream.applied;
  }

  /** Marks a log entry that changes nothing (refused input) applied. */
  skipLogEntry(log: LogPosition): Promise<void> {
    return this.#lock.run(async () => this.#p.catalog.stream.record(log.seq));
  }

  getItem(id: string): ItemView | undefined {
    const rec = this.#p.catalog.get(id);
    if (!rec) return undefined;
    const model = this.#p.control.modelByVersion(rec.model)?.id ?? `version-${rec.model}`;
    return { id: rec.id, sid: rec.codes, model };
  }

  listModels(status?: string): ModelView[] {
    this.#assertOpen();
    return this.#life.listModels(status);
  }

  registerModel(path: string): Promise<ModelView> {
    this.#assertOpen();
    return this.#life.registerModel(path);
  }

  activateModel(id: string): Promise<ModelView> {
    this.#assertOpen();
    return this.#life.activateModel(id);
  }

  startReindex(req: ReindexRequest): Promise<JobView> {
    this.#assertOpen();
    return this.#life.startReindex(req);
  }

  getJob(id: string): JobView {
    this.#assertOpen();
    return this.#life.job(id);
  }

  cancelJob(id: string): Promise<JobView> {
    this.#assertOpen();
    return this.#life.cancelJob(id);
  }

  /** A cluster shard's re-index swaps only when `gate` says so (the cluster flipped its active model). */
  setSwapGate(gate: (id: string, model: string) => boolean): void {
    this.#swapGate = gate;
  }

  /** Stops a running re-index at a batch boundary (it resumes at the next start), finishes queued writes,
   * syncs the vector slot file, closes workers and stores. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#life.stop();
    await this.#lock.run(async () => {
      this.#closed = true;
      const p = this.#p;
      await p.layout?.close();
      await p.vectors.sync();
      await p.vectors.close();
      await p.postings.close();
      await p.pool.close();
      await this.#target?.pool.close();
      await p.catalog.close();
      p.control.close();
      p.metrics.bind(undefined);
      if (p.ownMetrics) p.metrics.close();
      p.lock.release();
    });
  }

  #applyCollisionPolicy(enc: EncodeResult, n: number, model: ActiveModel): Int32Array {
    return applyCollisionPolicy(this.#p.config.collisions, this.#p.catalog, enc, n, model);
  }

  /** Starts a background sync of the vector slot file (never awaited under the write lock: writers do not stall). */
  #maybeCheckpoint(): void {
    const { vectors, config } = this.#p;
    if (vectors.changesSinceSync >= checkpointThreshold(config.storage, vectors.store.ntotal)) vectors.startSync();
  }

  /** Whether the last requests came over several HTTP client connections (http/connections.ts; never without HTTP). */
  useClientMix(severalClients: () => boolean): void {
    this.#severalClients = severalClients;
  }

  /**
   * Asked from inside a read: no other read is in flight and one client is asking. Such a read runs its encoder and
   * rerank on the event loop (a thread hop only pays while others wait for the loop). The client check matters under
   * load: a read on this path holds the loop until it answers, so other clients' requests wait unread and the gate
   * alone would rarely see a second read.
   */
  get #alone(): boolean {
    return this.#gate.reading <= 1 && !this.#severalClients();
  }

  #assertOpen(): void {
    if (this.#closed) throw new SidxError('SIDX_ERR_NOT_READY', 'service is closing');
  }

  /** What lifecycle.ts and reindex-job.ts may do to the service. */
  #host(): ReindexHost & { config: Readonly<Config> } {
    const p = this.#p;
    return {
      config: p.config, log: p.log, metrics: p.metrics, catalog: p.catalog, control: p.control, lock: this.#lock, dataDir: p.dataDir,
      active: () => ({ info: p.model, bundle: p.bundle, pool: p.pool }),
      collide: (enc, n, model) => this.#applyCollisionPolicy(enc, n, model),
      placeEncode: encodeOptionsFor(p.config.collisions),
      beginTarget: (space) => this.#lock.run(() => {
        p.postings.track(space.info.version, space.info.levels);
        this.#target = space;
        this.#generation++;
      }),
      endTarget: () => this.#lock.run(() => {
        if (this.#target && this.#target.info.version !== p.model.version) p.postings.untrack(this.#target.info.version);
        this.#target = null;
        this.#generation++;
      }),
      swap: (space) => this.#swap(space),
      maySwap: (id, model) => (this.#swapGate ? this.#swapGate(id, model) : p.config.cluster.role !== 'shard'),
    };
  }

  /** Serves `space` from now on: one LMDB commit (the catalog's served key space), then the registry. */
  async #swap(space: ModelSpace): Promise<ModelSpace> {
    const p = this.#p;
    return this.#gate.exclusive(() => this.#lock.run(() => {
      const old: ModelSpace = { info: p.model, bundle: p.bundle, pool: p.pool };
      if (p.catalog.spaces.activeModel !== space.info.version) p.catalog.spaces.setActiveModel(space.info.version);
      p.control.activateModel(space.info.id);
      p.postings.track(space.info.version, space.info.levels);
      if (old.info.version !== space.info.version) p.postings.untrack(old.info.version);
      Object.assign(p, { model: space.info, bundle: space.bundle, pool: space.pool });
      this.#target = null;
      this.#generation++;
      return old;
    }));
  }
}
