/**
 * A cluster router (`sidx serve --role router`): the public API over the shards, holding no data.
 * - Writes: each item goes to its shard's write-log subject (shard = FNV-1a of the id mod S, wire.ts); the answer
 *   is sent once JetStream has acknowledged every message (file storage), so an acknowledged write survives kill -9
 *   of any sidx process. A batch is split per shard, and per message to stay under NATS's max_payload: atomic per
 *   message, not per request. With cluster.waitApplied the answer also waits until one replica of each shard
 *   touched has applied its messages (read-your-writes through that replica).
 * - Reads: every shard gets the retrieve over request-reply (a queue group per shard: any live replica answers) and
 *   the router merges their top k by score (router-reads.ts; a retrieve batch's queries go to each shard together, in
 *   as few requests as max_payload allows). A shard with no answer within cluster.requestTimeoutMs makes the answer
 *   partial (`missingShards`), never a hang.
 * - The router's own encoder encodes each query once (beam or encoder output, sent with it to every shard) with the
 *   cluster's active model, and answers /v1/encode. An upsert's answer gives, with cluster.waitApplied, each item's
 *   SID and `replaced` as the shard that applied it reports them; without it, the SID of the router's encoder (the
 *   collision policy is the shard's, applied later) and no `replaced` (not known yet).
 * - The model registry, activation and re-index jobs live in the cluster's KV bucket (router-models.ts, which says
 *   what a query sees while the active model flips); a shard refusing a query's model (SIDX_ERR_MODEL_SWAP) makes the
 *   router encode it again and ask again, until cluster.requestTimeoutMs.
 * - The SID trie routes (/v1/sids/next, /v1/sids/trie) merge every shard's answer (router-sids.ts); without every
 *   shard they are a 503, never an incomplete set of SIDs.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import type { SidxMetrics } from '../service/metrics.ts';
import { checkDelete, checkItemId, checkUpsertRows } from '../service/write-input.ts';
import { closeWhenIdle, infoOf, openSpace, type ActiveModel, type ModelSpace } from '../service/model-space.ts';
import type { ServiceApi } from '../service/service-api.ts';
import { openKeyStore, type KeyStore } from '../service/key-store.ts';
import { routeRetrieve, routeRetrieveMany, type RouterReadsHost } from './router-reads.ts';
import type { DeleteOutput, EncodeOutput, ItemView, Readiness, RetrieveOutput,
  RetrieveQuery, UpsertItem, UpsertOutput } from '../service/types.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { connectCluster, shardsInLog, type ClusterLink } from './nats.ts';
import { ClusterRegistry, loadEntryBundle, type RegisteredModel } from './registry.ts';
import { RouterModels } from './router-models.ts';
import { RouterSids } from './router-sids.ts';
import type { AppliedItem } from './shard.ts';
import {
  appliedSubject, decodeJson, encodeJson, typedToBase64, itemSubject, shardOf, writeSubject, type ShardAnswer, type WriteMessage,
} from './wire.ts';

interface Log { info(msg: string): void; warn(msg: string): void; error(msg: string): void }

/** How often /readyz's item and vector counts are asked of the shards. */
const COUNT_EVERY_MS = 2000;


export class ClusterRouter implements ServiceApi {
  readonly metrics: SidxMetrics;
  #space: ModelSpace;
  #config: Readonly<Config>;
  #logger: Log;
  #models!: RouterModels;
  #switching: Promise<void> = Promise.resolve();
  #link: ClusterLink;
  #js: JetStreamClient;
  #c: Readonly<Config['cluster']>;
  #maxPayload: number;
  #closed = false;
  #counting: NodeJS.Timeout;
  #held = { items: 0, vectors: 0 };
  /** /v1/sids/next and /v1/sids/trie merged from every shard (router-sids.ts). */
  readonly sids: RouterSids;
  /** auth.mode writes|all: the keys of the control plane in the router's storage.dataDir (service/key-store.ts). */
  #keys: KeyStore | null = null;
  readonly listModels: RouterModels['listModels'] = (status) => this.#models.listModels(status);
  readonly registerModel: RouterModels['registerModel'] = (path) => this.#models.registerModel(path);
  readonly activateModel: RouterModels['activateModel'] = (id) => this.#models.activateModel(id);
  readonly startReindex: RouterModels['startReindex'] = (req) => this.#models.startReindex(req);
  readonly getJob: RouterModels['getJob'] = (id) => this.#models.getJob(id);
  readonly cancelJob: RouterModels['cancelJob'] = (id) => this.#models.cancelJob(id);

  private constructor(space: ModelSpace, link: ClusterLink, config: Readonly<Config>, log: Log, metrics: SidxMetrics) {
    this.#space = space;
    this.#config = config;
    this.#logger = log;
    this.metrics = metrics;
    this.#link = link;
    this.#js = jetstream(link.nc);
    this.#c = config.cluster;
    this.#maxPayload = link.nc.info?.max_payload ?? 1024 * 1024;
    this.sids = new RouterSids({
      nc: link.nc, shards: this.#c.shards, timeoutMs: this.#c.requestTimeoutMs, served: () => this.model,
      version: async (id) => (await this.#models.registry.model(id))?.version ?? 0,
      askAll: <T>(subjectOf: (shard: number) => string, data: Uint8Array) => this.#askAll<T>(subjectOf, data),
    });
    this.#counting = setInterval(() => void this.#count(), COUNT_EVERY_MS).unref();
    void this.#count();
  }

  /** The items and vectors the shards held when last asked (one replica each; a shard not answering is left out). */
  async #count(): Promise<void> {
    const { ok } = await this.#askAll<{ items: number; vectors: number }>(appliedSubject, encodeJson({})).catch(() => ({ ok: [] }));
    this.#held = { items: ok.reduce((s, a) => s + a.items, 0), vectors: ok.reduce((s, a) => s + a.vectors, 0) };
  }

  static async open(config: Readonly<Config>, log: Log, metrics: SidxMetrics): Promise<ClusterRouter> {
    const bundle = await loadBundle(config.model.dir);
    const link = await connectCluster(config.cluster, 'sidx router');
    let router: ClusterRouter | undefined;
    try {
      const registry = await ClusterRegistry.open(link.nc, config.cluster.registry, config.cluster.streamReplicas);
      await registry.agreeShards(config.cluster.shards, 'this router', () => shardsInLog(link, config.cluster.stream));
      router = new ClusterRouter(await openSpace(bundle, 0, config, log, metrics), link, config, log, metrics);
      if (config.auth.mode !== 'off') router.#keys = openKeyStore(config.storage.dataDir);
      const m = bundle.manifest;
      router.#models = await RouterModels.start(registry, {
        config, log, metrics, served: () => router!.model, serve: (e) => router!.#serve(e), items: () => router!.#items(),
      }, { id: m.id, method: m.method, inputDim: m.inputDim, levels: m.levels, codebookSizes: m.codebookSizes, metric: m.metric,
        path: bundle.dir, sha256: bundle.sha256, metrics: m.metrics ?? {} });
      log.info(`cluster: router over ${config.cluster.shards} shard(s), write log ${config.cluster.stream} at ${config.cluster.url}, `
        + `registry ${config.cluster.registry}, serving ${router.model.id}`);
      return router;
    } catch (err) {
      if (router) await router.close();
      else await link.nc.close();
      throw err;
    }
  }

  verifyKey(key: string): ReturnType<KeyStore['verifyKey']> {
    if (!this.#keys) throw new SidxError('SIDX_ERR_NOT_READY', 'no key store: auth.mode is off');
    return this.#keys.verifyKey(key);
  }

  /** The model queries are encoded with: the cluster's active model. */
  get model(): ActiveModel {
    return this.#space.info;
  }

  /** Encodes with registered model `m` from now on (its bundle checked against the registered sha256); one switch at a time. */
  #serve(m: RegisteredModel): Promise<void> {
    const next = this.#switching.then(() => this.#switchTo(m));
    this.#switching = next.catch(() => undefined);
    return next;
  }

  async #switchTo(m: RegisteredModel): Promise<void> {
    if (m.id === this.model.id) return;
    const bundle = await loadEntryBundle(m, this.#config.model.registryDir);
    const space = await openSpace(bundle, 0, this.#config, this.#logger, this.metrics);
    const old = this.#space;
    this.#space = space;
    this.#logger.info(`cluster: router encodes with ${m.id} (was ${old.info.id})`);
    void closeWhenIdle(old.pool);
  }

  /** Items on the shards (one replica each), or null when one does not answer. */
  async #items(): Promise<number | null> {
    const { ok, missingShards } = await this.#askAll<{ items: number }>(appliedSubject, encodeJson({}));
    return missingShards.length > 0 ? null : ok.reduce((s, a) => s + a.items, 0);
  }

  get encoderQueueLength(): number {
    return this.#space.pool.queueLength;
  }

  get ready(): boolean {
    return !this.#closed && !this.#link.nc.isClosed();
  }

  readiness(): Readiness {
    if (this.#closed || this.#link.nc.isClosed()) return { ready: false, model: null, provider: null, items: 0, vectors: 0 };
    return { ready: true, model: this.model.id, provider: this.#space.pool.provider, ...this.#held };
  }

  async encode(vectors: Float32Array, n: number): Promise<EncodeOutput> {
    const space = this.#space; // a flip meanwhile does not relabel the codes
    const out = await space.pool.encode(vectors, n, { codesOnly: true });
    return { model: space.info.id, codes: out.codes, n };
  }

  async upsert(items: UpsertItem[]): Promise<UpsertOutput> {
    const space = this.#space;
    const dim = space.info.inputDim;
    // A shard refuses a message the catalog would refuse and skips it (marked applied): so the router refuses the
    // request first, as a single node does, with the catalog's own checks (ids' UTF-8 bytes, surrogates, duplicates).
    checkUpsertRows(items, dim, true);
    const L = space.info.levels;
    const flat = new Float32Array(items.length * dim);
    items.forEach((it, i) => flat.set(it.vector, i * dim));
    const byShard = this.#split(items.map((it) => ({ id: it.id, v: typedToBase64(it.vector) })), (it) => it.id);
    const { seq, applied } = await this.#log(byShard, (part) => ({ op: 'upsert', items: part }));
    // Items no shard reported on (no waitApplied, or a replica restarted since): the router's encoder's SID.
    const enc = items.some((it) => !applied.has(it.id)) ? await space.pool.encode(flat, items.length, { codesOnly: true }) : null;
    return {
      model: space.info.id, seq, items: items.map((it, i) => {
        const done = applied.get(it.id);
        return done ? { id: it.id, sid: Int32Array.from(done.sid), replaced: done.replaced } : { id: it.id, sid: enc!.codes.slice(i * L, (i + 1) * L) };
      }),
    };
  }

  async delete(ids: string[]): Promise<DeleteOutput> {
    checkDelete(ids); // as upsert: refused here, not skipped on a shard after the answer
    const { seq } = await this.#log(this.#split(ids, (id) => id), (part) => ({ op: 'delete', ids: part }));
    return { seq, deleted: ids.length, missing: [] };
  }

  #split<T>(entries: T[], idOf: (e: T) => string): Map<number, T[]> {
    const out = new Map<number, T[]>();
    for (const e of entries) {
      const s = shardOf(idOf(e), this.#c.shards);
      let list = out.get(s);
      if (!list) out.set(s, (list = []));
      list.push(e);
    }
    return out;
  }

  /**
   * Publishes each shard's part (in messages under max_payload) and waits for JetStream's acks; the last seq, and
   * with cluster.waitApplied what the upserts did on the shards (by id).
   */
  async #log<T>(byShard: Map<number, T[]>, message: (part: T[]) => WriteMessage): Promise<{ seq: bigint; applied: Map<string, AppliedItem> }> {
    const acked = new Map<number, number[]>();
    await Promise.all([...byShard].map(async ([shard, entries]) => {
      const seqs: number[] = [];
      acked.set(shard, seqs);
      for (const data of this.#messages(entries, message)) {
        try {
          seqs.push((await this.#js.publish(writeSubject(shard), data)).seq);
        } catch (err) {
          throw new SidxError('SIDX_ERR_CLUSTER', `the write log did not acknowledge shard ${shard}'s part: ${(err as Error).message}`, { cause: err });
        }
      }
    }));
    const applied = new Map<string, AppliedItem>();
    if (this.#c.waitApplied) {
      const results = await Promise.all([...acked].map(([shard, seqs]) => this.#waitApplied(shard, seqs)));
      for (const r of results) for (const it of r) applied.set(it.id, it);
    }
    return { seq: BigInt(Math.max(0, ...[...acked.values()].flat())), applied };
  }

  *#messages<T>(entries: T[], message: (part: T[]) => WriteMessage): Generator<Uint8Array> {
    let from = 0;
    while (from < entries.length) {
      let n = entries.length - from;
      let data = encodeJson(message(entries.slice(from, from + n)));
      while (data.length > this.#maxPayload * 0.9 && n > 1) {
        n = Math.max(1, Math.floor((n * this.#maxPayload * 0.8) / data.length));
        data = encodeJson(message(entries.slice(from, from + n)));
      }
      yield data;
      from += n;
    }
  }

  /**
   * Waits until a replica of `shard` has applied log entries `seqs`; what their upserts did, as far as the replica
   * answering still has it (a replica restarted since has not: a few more asks may reach another one).
   */
  async #waitApplied(shard: number, seqs: number[]): Promise<AppliedItem[]> {
    const deadline = Date.now() + this.#c.requestTimeoutMs;
    const last = BigInt(Math.max(...seqs));
    const ask = encodeJson({ seqs: seqs.map(String) });
    let tries = 0;
    while (Date.now() < deadline) {
      // Short per-ask timeouts: a replica that died since the ask was routed to it must not use up the whole wait.
      const timeout = Math.max(1, Math.min(250, deadline - Date.now()));
      const res = await this.#link.nc.request(appliedSubject(shard), ask, { timeout }).catch(() => null);
      const a = res && decodeJson<{ seq: string; results?: Record<string, AppliedItem[]> }>(res.data);
      if (a && BigInt(a.seq) >= last) {
        const got = seqs.map((q) => a.results?.[String(q)]);
        if (got.every((r) => r !== undefined) || ++tries >= 3) return got.flatMap((r) => r ?? []);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new SidxError('SIDX_ERR_CLUSTER', `shard ${shard} did not apply write log seq ${last} within ${this.#c.requestTimeoutMs} ms (the write is logged and will be applied)`);
  }

  /** One query asked of every shard, their answers merged (router-reads.ts). */
  retrieve(q: RetrieveQuery): Promise<RetrieveOutput> {
    return routeRetrieve(this.#reads, q);
  }

  /** The queries of one POST /v1/retrieve/batch, asked of every shard together (router-reads.ts). */
  retrieveMany(qs: readonly RetrieveQuery[]): Promise<RetrieveOutput[]> {
    return routeRetrieveMany(this.#reads, qs);
  }

  get #reads(): RouterReadsHost {
    return {
      space: () => this.#space, askAll: (subjectOf, data) => this.#askAll(subjectOf, data), requestTimeoutMs: this.#c.requestTimeoutMs, maxPayload: this.#maxPayload,
      retried: (route) => this.metrics.routerSwapRetries.inc({ route }),
    };
  }

  /**
   * Asks every shard (one replica each) and waits up to cluster.requestTimeoutMs: the answers, the shards without
   * one, and those refusing the query's model (SIDX_ERR_MODEL_SWAP). Another error of a shard (e.g. invalid input)
   * is thrown as it is.
   */
  async #askAll<T>(subjectOf: (shard: number) => string, data: Uint8Array): Promise<{ ok: T[]; missingShards: number[]; refused: number[] }> {
    type Failed = Extract<ShardAnswer, { ok: false }>;
    const shards = Array.from({ length: this.#c.shards }, (_, s) => s);
    const answers: Array<T | Failed | null> = await Promise.all(shards.map(async (s) => {
      try {
        return decodeJson<T | Failed>((await this.#link.nc.request(subjectOf(s), data, { timeout: this.#c.requestTimeoutMs })).data);
      } catch {
        return null;
      }
    }));
    const failedOf = (a: T | Failed | null) => (a !== null && (a as { ok?: boolean }).ok === false ? (a as Failed) : undefined);
    const failed = answers.map(failedOf).find((f) => f !== undefined && f.code !== 'SIDX_ERR_MODEL_SWAP');
    if (failed) throw new SidxError(failed.code as never, failed.message, { field: failed.field });
    return {
      ok: answers.filter((a) => a !== null && failedOf(a) === undefined) as T[],
      missingShards: shards.filter((s) => answers[s] === null),
      refused: shards.filter((s) => failedOf(answers[s]!) !== undefined),
    };
  }

  async getItem(id: string): Promise<ItemView | undefined> {
    checkItemId(id, 'id'); // an id no catalog can hold: a 400, as on a single node
    const shard = shardOf(id, this.#c.shards);
    let res;
    try {
      res = await this.#link.nc.request(itemSubject(shard), encodeJson({ id }), { timeout: this.#c.requestTimeoutMs });
    } catch (err) {
      throw new SidxError('SIDX_ERR_CLUSTER', `shard ${shard} did not answer: ${(err as Error).message}`, { cause: err });
    }
    const item = decodeJson<{ item: { id: string; sid: number[]; model: string } | null }>(res.data).item;
    return item ? { id: item.id, sid: Int32Array.from(item.sid), model: item.model } : undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#counting);
    await this.#models?.close();
    this.#keys?.close();
    await this.#space.pool.close();
    await this.#link.nc.drain().catch(() => undefined);
  }
}
