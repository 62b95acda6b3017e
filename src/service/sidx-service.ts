/**
 * The use-cases behind the API: encode, retrieve, upsert, delete, get. Owns the lifecycle of the stores,
 * the encoder pool and the derived vector index.
 *
 * Write path: encode outside the lock, then under the write lock commit one LMDB transaction (items,
 * postings, change log) and only after it mutate FAISS. A crash between the two is repaired at the next
 * start by replaying the change log.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import { Catalog } from '../store/catalog.ts';
import { ControlPlane, MIGRATIONS_DIR } from '../store/control-plane.ts';
import { resolveCollisions } from '../sid/collisions.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { EncoderPool, type BeamLevel } from '../tokenizer/encoder-pool.ts';
import { gatherCandidates } from './candidates.ts';
import { VectorState, type Logger } from './vector-state.ts';
import { WriteLock } from './write-lock.ts';
import { instrumentEncoder } from './instrument.ts';
import { SidxMetrics } from './metrics.ts';
import { DEFAULT_BEAM_WIDTH } from './types.ts';
import type {
  DeleteOutput, EncodeOutput, ItemView, ModelInfo, Readiness, RetrieveOutput, RetrieveQuery, RetrievedItem, UpsertItem, UpsertOutput,
} from './types.ts';

export interface ActiveModel extends ModelInfo {
  /** Small integer naming the model's key space in LMDB. */
  version: number;
}

interface Parts {
  config: Readonly<Config>;
  log: Logger;
  control: ControlPlane;
  catalog: Catalog;
  pool: EncoderPool;
  vectors: VectorState;
  model: ActiveModel;
  metrics: SidxMetrics;
  ownMetrics: boolean;
}

export interface OpenOptions {
  /** Shared with the HTTP app (`sidx serve`); default: a registry of the service's own. */
  metrics?: SidxMetrics;
}

export class SidxService {
  readonly model: ActiveModel;
  #p: Parts;
  #lock = new WriteLock();
  #closed = false;

  private constructor(parts: Parts) {
    this.#p = parts;
    this.model = parts.model;
  }

  static async open(config: Readonly<Config>, log: Logger, options: OpenOptions = {}): Promise<SidxService> {
    const dataDir = resolve(config.storage.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const bundle = await loadBundle(resolve(config.model.dir));
    const m = bundle.manifest;
    const control = ControlPlane.open(join(dataDir, 'control.sqlite'), MIGRATIONS_DIR);
    let catalog: Catalog | undefined;
    let pool: EncoderPool | undefined;
    try {
      const row = control.registerModel({
        id: m.id, method: m.method, inputDim: m.inputDim, codebookSizes: m.codebookSizes,
        path: bundle.dir, sha256: bundle.sha256, metrics: m.metrics ?? {},
      });
      control.activateModel(row.id);
      catalog = Catalog.open(join(dataDir, 'catalog'), { mapSizeBytes: config.storage.mapSizeBytes });
      pool = await EncoderPool.create(bundle, {
        workers: config.encoder.workers,
        provider: config.encoder.provider,
        intraOpThreads: config.encoder.intraOpThreads || undefined,
        log: (level, msg) => (level === 'warn' ? log.warn(msg) : log.info(msg)),
      });
      const metrics = options.metrics ?? new SidxMetrics();
      instrumentEncoder(pool, metrics);
      log.info(`encoder: model ${m.id} (${m.method}, ${m.levels} x [${m.codebookSizes.join(', ')}]) on ${pool.provider}`);
      if (config.encoder.provider !== pool.provider) log.warn(`encoder: provider ${config.encoder.provider} requested, running on ${pool.provider} (reason above)`);
      const vectors = await VectorState.open(dataDir, catalog, m.inputDim, m.metric, log);
      const model: ActiveModel = {
        id: m.id, version: row.version, inputDim: m.inputDim, levels: m.levels, codebookSizes: m.codebookSizes, metric: m.metric,
      };
      const service = new SidxService({ config, log, control, catalog, pool, vectors, model, metrics, ownMetrics: !options.metrics });
      metrics.bind({
        encoderQueueLength: () => service.#p.pool.queueLength,
        encoderInFlight: () => service.#p.pool.inFlight,
        catalogItems: () => (service.#closed ? 0 : service.#p.catalog.count),
      });
      return service;
    } catch (err) {
      await pool?.close();
      await catalog?.close();
      control.close();
      throw err;
    }
  }

  get metrics(): SidxMetrics {
    return this.#p.metrics;
  }

  /** Checks an API key against the control plane (constant-time; see store/api-keys.ts). */
  verifyKey(key: string) {
    this.#assertOpen();
    return this.#p.control.keys.verify(key);
  }

  readiness(): Readiness {
    const p = this.#p;
    if (this.#closed) return { ready: false, model: null, provider: null, items: 0, vectors: 0 };
    return { ready: true, model: this.model.id, provider: p.pool.provider, items: p.catalog.count, vectors: p.vectors.index.ntotal };
  }

  async encode(vectors: Float32Array, n: number): Promise<EncodeOutput> {
    const out = await this.#p.pool.encode(vectors, n);
    return { model: this.model.id, codes: out.codes, n };
  }

  async retrieve(q: RetrieveQuery): Promise<RetrieveOutput> {
    if (q.rerank && !q.embedding) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'rerank needs an embedding', { field: 'rerank' });
    }
    const t0 = performance.now();
    const L = this.model.levels;
    let querySids = q.sids ?? [];
    let ranking;
    let beam: BeamLevel[] | undefined;
    if (q.expand === 'beam') {
      if (!q.embedding) throw new SidxError('SIDX_ERR_INVALID_INPUT', 'expand "beam" needs an embedding', { field: 'embedding' });
      // Prefixes ranked by partial inner product for ip models (it found more of the exact top-10 in docs/eval.md),
      // by distance to the codeword sum for l2 models.
      beam = await this.#p.pool.beam(q.embedding, 1, q.beamWidth ?? DEFAULT_BEAM_WIDTH, this.model.metric === 'ip' ? 0 : 1);
      const last = beam[L - 1]!;
      if (!q.sids) querySids = Array.from({ length: last.width }, (_, b) => last.codes.slice(b * L, (b + 1) * L));
    } else if (q.embedding && !q.sids) {
      const enc = await this.#p.pool.encode(q.embedding, 1);
      querySids = [enc.codes.slice(0, L)];
      ranking = { topCodes: enc.topCodes, topDistances: enc.topDistances, topM: enc.topCodes.length / L };
    }
    const t1 = performance.now();
    // A beam's own SIDs are gathered by the beam expansion (in score order); only given sids are matched first.
    const exactSids = beam ? q.sids ?? [] : querySids;
    const set = gatherCandidates(this.#p.catalog, this.model.version, exactSids, q.expand, q.k, q.maxCandidates, ranking, beam);
    const t2 = performance.now();
    const rerank = q.rerank ?? q.embedding !== undefined;
    let order = Array.from(set.keys.keys());
    let scores: Float32Array | undefined;
    if (rerank && set.keys.length > 0) {
      scores = this.#p.vectors.index.scoreSubset(q.embedding!, BigInt64Array.from(set.keys));
      const sign = this.model.metric === 'ip' ? 1 : -1;
      for (let i = 0; i < scores.length; i++) scores[i] = sign * scores[i]!;
      const s = scores;
      order = order.filter((i) => !Number.isNaN(s[i]!)).sort((a, b) => s[b]! - s[a]! || a - b);
    }
    const t3 = performance.now();
    const items: RetrievedItem[] = [];
    for (const i of order) {
      if (items.length >= q.k) break;
      const rec = this.#p.catalog.getByKey(set.keys[i]!);
      if (!rec) continue;
      items.push({ id: rec.id, score: scores ? scores[i]! : null, sid: rec.codes, match: set.match[i]! });
    }
    const t4 = performance.now();
    return {
      model: this.model.id,
      items,
      querySids,
      candidates: { exact: set.exact, hamming1: set.hamming1, beam: set.beam, prefix: set.prefix, total: set.keys.length },
      timingsMs: { encode: t1 - t0, candidates: t2 - t1, rerank: t3 - t2, total: t4 - t0 },
    };
  }

  async upsert(items: UpsertItem[]): Promise<UpsertOutput> {
    const dim = this.model.inputDim;
    const L = this.model.levels;
    const flat = new Float32Array(items.length * dim);
    items.forEach((it, i) => flat.set(it.vector, i * dim));
    const enc = await this.#p.pool.encode(flat, items.length);
    return this.#lock.run(async () => {
      this.#assertOpen();
      const codes = this.#applyCollisionPolicy(enc, items.length);
      const batch = items.map((it, i) => ({ id: it.id, vector: flat.subarray(i * dim, (i + 1) * dim), codes: codes.subarray(i * L, (i + 1) * L) }));
      const res = this.#p.catalog.upsertBatch(this.model.version, batch);
      this.#p.vectors.applyUpsert(res.keys, flat, res.replaced);
      this.#p.metrics.itemsIndexed.inc({ source: 'api' }, items.length);
      await this.#maybeCheckpoint();
      return {
        model: this.model.id,
        seq: res.seq,
        items: batch.map((b, i) => ({ id: b.id, sid: b.codes.slice(), replaced: res.replaced[i]! })),
      };
    });
  }

  async delete(ids: string[]): Promise<DeleteOutput> {
    return this.#lock.run(async () => {
      this.#assertOpen();
      const res = this.#p.catalog.deleteBatch(ids);
      this.#p.vectors.applyDelete(res.removed);
      this.#p.metrics.itemsDeleted.inc(res.removed.length);
      await this.#maybeCheckpoint();
      return { seq: res.seq, deleted: res.removed.length, missing: res.missing };
    });
  }

  getItem(id: string): ItemView | undefined {
    const rec = this.#p.catalog.get(id);
    if (!rec) return undefined;
    const model = this.#p.control.modelByVersion(rec.model)?.id ?? `version-${rec.model}`;
    return { id: rec.id, sid: rec.codes, model };
  }

  /** Finishes queued writes, checkpoints the vector index, closes workers and stores. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#lock.run(async () => {
      this.#closed = true;
      const p = this.#p;
      if (p.vectors.changesSinceCheckpoint > 0) await p.vectors.checkpoint();
      p.vectors.close();
      await p.pool.close();
      await p.catalog.close();
      p.control.close();
      p.metrics.bind(undefined);
      if (p.ownMetrics) p.metrics.close();
    });
  }

  /**
   * Under the `cap` policy an item whose SID already holds `cap` items moves to its nearest free last-level
   * alternative. Runs under the write lock: occupancy is what is committed. An item being replaced still
   * counts at its old SID.
   */
  #applyCollisionPolicy(enc: { codes: Int32Array; topCodes: Int32Array; topDistances: Float32Array }, n: number): Int32Array {
    const policy = this.#p.config.collisions;
    if (policy.strategy === 'none') return enc.codes;
    const { levels, version } = this.model;
    const catalog = this.#p.catalog;
    const cap = policy.cap;
    const result = resolveCollisions(
      { kind: 'cap', cap },
      { codes: enc.codes, topCodes: enc.topCodes, topDistances: enc.topDistances, n, levels, topM: enc.topCodes.length / (n * levels) },
      { count: (sid) => catalog.exact(version, sid, cap + 1).length },
    );
    return result.codes;
  }

  async #maybeCheckpoint(): Promise<void> {
    if (this.#p.vectors.changesSinceCheckpoint >= this.#p.config.storage.checkpointEvery) await this.#p.vectors.checkpoint();
  }

  #assertOpen(): void {
    if (this.#closed) throw new SidxError('SIDX_ERR_NOT_READY', 'service is closing');
  }
}
