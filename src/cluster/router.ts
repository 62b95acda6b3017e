/**
 * A cluster router (`sidx serve --role router`): the public API over the shards, holding no data.
 * - Writes: each item goes to its shard's write-log subject (shard = FNV-1a of the id mod S, wire.ts); the answer
 *   is sent once JetStream has acknowledged every message (file storage), so an acknowledged write survives kill -9
 *   of any sidx process. A batch is split per shard, and per message to stay under NATS's max_payload: atomic per
 *   message, not per request. With cluster.waitApplied the answer also waits until one replica of each shard
 *   touched has applied its messages (read-your-writes through that replica).
 * - Reads: every shard gets the retrieve over request-reply (a queue group per shard: any live replica answers) and
 *   the router merges their top k by score. A shard with no answer within cluster.requestTimeoutMs makes the
 *   answer partial (`missingShards`), never a hang.
 * - The router's own encoder encodes each query once (beam or encoder output, sent with it to every shard), answers
 *   /v1/encode and gives upserts their SIDs in the answer (the shards encode again when they apply; `replaced` is
 *   not known here and is false).
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import type { SidxMetrics } from '../service/metrics.ts';
import { infoOf, openSpace, type ActiveModel, type ModelSpace } from '../service/model-space.ts';
import type { ServiceApi } from '../service/service-api.ts';
import { queryEncoding, resolveExpand } from '../service/retrieve-steps.ts';
import type { DeleteOutput, EncodeOutput, ItemView, Readiness, RetrievedItem, RetrieveOutput,
  RetrieveQuery, UpsertItem, UpsertOutput } from '../service/types.ts';
import { codeBytesFor, encodeNext } from '../sid/next-format.ts';
import type { NextOutput } from '../service/sid-reads.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { connectCluster, type ClusterLink } from './nats.ts';
import {
  appliedSubject, decodeJson, encodeJson, typedToBase64, itemSubject, nextSubject, queryMessage, querySubject, shardOf, writeSubject, type NextAnswer,
  type ShardAnswer, type WriteMessage,
} from './wire.ts';

interface Log { info(msg: string): void; warn(msg: string): void }

/** How often /readyz's item and vector counts are asked of the shards. */
const COUNT_EVERY_MS = 2000;

const unsupported = (what: string) => (): never => {
  throw new SidxError('SIDX_ERR_CLUSTER_UNSUPPORTED', `${what} is not available on a cluster router yet`);
};

export class ClusterRouter implements ServiceApi {
  readonly model: ActiveModel;
  readonly metrics: SidxMetrics;
  #space: ModelSpace;
  #link: ClusterLink;
  #js: JetStreamClient;
  #c: Readonly<Config['cluster']>;
  #maxPayload: number;
  #closed = false;
  #counting: NodeJS.Timeout;
  #held = { items: 0, vectors: 0 };
  readonly sids = {
    model: unsupported('/v1/sids'), tag: unsupported('/v1/sids/trie'), trie: unsupported('/v1/sids/trie'), binary: unsupported('/v1/sids/trie'),
    next: (prefixes: readonly (readonly number[])[], modelId?: string) => this.#next(prefixes, modelId),
    nextBinary: (out: NextOutput) => encodeNext(out),
  };
  readonly listModels = unsupported('the model registry');
  readonly registerModel = unsupported('the model registry');
  readonly activateModel = unsupported('the model registry');
  readonly startReindex = unsupported('re-index');
  readonly getJob = unsupported('jobs');
  readonly cancelJob = unsupported('jobs');
  readonly verifyKey = unsupported('API keys');

  private constructor(space: ModelSpace, link: ClusterLink, c: Readonly<Config['cluster']>, metrics: SidxMetrics) {
    this.#space = space;
    this.model = space.info;
    this.metrics = metrics;
    this.#link = link;
    this.#js = jetstream(link.nc);
    this.#c = c;
    this.#maxPayload = link.nc.info?.max_payload ?? 1024 * 1024;
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
    try {
      const space = await openSpace(bundle, 0, config, log, metrics);
      log.info(`cluster: router over ${config.cluster.shards} shard(s), write log ${config.cluster.stream} at ${config.cluster.url}`);
      return new ClusterRouter({ ...space, info: infoOf(bundle, 0) }, link, config.cluster, metrics);
    } catch (err) {
      await link.nc.close();
      throw err;
    }
  }

  get encoderQueueLength(): number {
    return this.#space.pool.queueLength;
  }

  readiness(): Readiness {
    if (this.#closed || this.#link.nc.isClosed()) return { ready: false, model: null, provider: null, items: 0, vectors: 0 };
    return { ready: true, model: this.model.id, provider: this.#space.pool.provider, ...this.#held };
  }

  async encode(vectors: Float32Array, n: number): Promise<EncodeOutput> {
    const out = await this.#space.pool.encode(vectors, n);
    return { model: this.model.id, codes: out.codes, n };
  }

  async upsert(items: UpsertItem[]): Promise<UpsertOutput> {
    const dim = this.model.inputDim;
    const L = this.model.levels;
    const flat = new Float32Array(items.length * dim);
    items.forEach((it, i) => flat.set(it.vector, i * dim));
    const enc = await this.#space.pool.encode(flat, items.length);
    const byShard = this.#split(items.map((it) => ({ id: it.id, v: typedToBase64(it.vector) })), (it) => it.id);
    const seq = await this.#log(byShard, (part) => ({ op: 'upsert', items: part }));
    return { model: this.model.id, seq, items: items.map((it, i) => ({ id: it.id, sid: enc.codes.slice(i * L, (i + 1) * L), replaced: false })) };
  }

  async delete(ids: string[]): Promise<DeleteOutput> {
    const seq = await this.#log(this.#split(ids, (id) => id), (part) => ({ op: 'delete', ids: part }));
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

  /** Publishes each shard's part (in messages under max_payload) and waits for JetStream's acks; the last seq. */
  async #log<T>(byShard: Map<number, T[]>, message: (part: T[]) => WriteMessage): Promise<bigint> {
    const acked = new Map<number, number>();
    await Promise.all([...byShard].map(async ([shard, entries]) => {
      for (const data of this.#messages(entries, message)) {
        let ack;
        try {
          ack = await this.#js.publish(writeSubject(shard), data);
        } catch (err) {
          throw new SidxError('SIDX_ERR_CLUSTER', `the write log did not acknowledge shard ${shard}'s part: ${(err as Error).message}`, { cause: err });
        }
        acked.set(shard, Math.max(acked.get(shard) ?? 0, ack.seq));
      }
    }));
    if (this.#c.waitApplied) await Promise.all([...acked].map(([shard, seq]) => this.#waitApplied(shard, seq)));
    return BigInt(Math.max(0, ...acked.values()));
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

  async #waitApplied(shard: number, seq: number): Promise<void> {
    const deadline = Date.now() + this.#c.requestTimeoutMs;
    while (Date.now() < deadline) {
      // Short per-ask timeouts: a replica that died since the ask was routed to it must not use up the whole wait.
      const timeout = Math.max(1, Math.min(250, deadline - Date.now()));
      const res = await this.#link.nc.request(appliedSubject(shard), encodeJson({}), { timeout }).catch(() => null);
      if (res && BigInt(decodeJson<{ seq: string }>(res.data).seq) >= BigInt(seq)) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new SidxError('SIDX_ERR_CLUSTER', `shard ${shard} did not apply write log seq ${seq} within ${this.#c.requestTimeoutMs} ms (the write is logged and will be applied)`);
  }

  async retrieve(q: RetrieveQuery): Promise<RetrieveOutput> {
    const t0 = performance.now();
    const pool = this.#space.pool;
    // Encoded once here: every shard gets the router's beam (or encoder row) with the query.
    const encoded = await queryEncoding(pool, this.model.metric, q, resolveExpand(q.expand, q.embedding !== undefined, pool, q.beamWidth));
    const data = encodeJson(queryMessage({ ...q, encoded }, this.model.id));
    const tEncoded = performance.now();
    const { ok, missingShards } = await this.#askAll<Extract<ShardAnswer, { ok: true }>>(querySubject, data);
    if (ok.length === 0) throw new SidxError('SIDX_ERR_CLUSTER', `no shard answered within ${this.#c.requestTimeoutMs} ms`);
    const merged: RetrievedItem[] = ok.flatMap((a) => a.items.map((it) => ({ ...it, sid: Int32Array.from(it.sid) })));
    merged.sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity));
    const sum = (key: keyof RetrieveOutput['candidates']) => ok.reduce((s, a) => s + a.candidates[key], 0);
    const total = performance.now() - t0;
    return {
      model: this.model.id, expand: ok[0]!.expand, items: merged.slice(0, q.k), querySids: ok[0]!.querySids.map((s) => Int32Array.from(s)),
      candidates: { exact: sum('exact'), hamming1: sum('hamming1'), beam: sum('beam'), prefix: sum('prefix'), total: sum('total') },
      timingsMs: { encode: tEncoded - t0, beam: 0, candidates: 0, rerank: 0, fetch: 0, total },
      ...(missingShards.length > 0 ? { missingShards } : {}),
    };
  }

  /**
   * Asks every shard (one replica each) and waits up to cluster.requestTimeoutMs: the answers, and the shards
   * without one. A shard's error (e.g. invalid input) is thrown as it is.
   */
  async #askAll<T>(subjectOf: (shard: number) => string, data: Uint8Array): Promise<{ ok: T[]; missingShards: number[] }> {
    const shards = Array.from({ length: this.#c.shards }, (_, s) => s);
    const answers: Array<T | Extract<ShardAnswer, { ok: false }> | null> = await Promise.all(shards.map(async (s) => {
      try {
        return decodeJson<T | Extract<ShardAnswer, { ok: false }>>((await this.#link.nc.request(subjectOf(s), data, { timeout: this.#c.requestTimeoutMs })).data);
      } catch {
        return null;
      }
    }));
    const failed = answers.find((a) => a !== null && (a as { ok: boolean }).ok === false) as Extract<ShardAnswer, { ok: false }> | undefined;
    if (failed) throw new SidxError(failed.code as never, failed.message, { field: failed.field });
    return { ok: answers.filter((a) => a !== null) as T[], missingShards: shards.filter((s) => answers[s] === null) };
  }

  /** /v1/sids/next over the shards: per prefix, the union of their next codes with summed counts (every shard needed). */
  async #next(prefixes: readonly (readonly number[])[], modelId?: string): Promise<NextOutput> {
    const { ok, missingShards } = await this.#askAll<Extract<NextAnswer, { ok: true }>>(nextSubject, encodeJson({ prefixes, model: modelId ?? this.model.id }));
    if (missingShards.length > 0) throw new SidxError('SIDX_ERR_CLUSTER', `shard(s) ${missingShards.join(', ')} did not answer: the next codes would be incomplete`);
    const next = prefixes.map((_, i) => {
      const counts = new Map<number, number>();
      for (const a of ok) a.next[i]!.codes.forEach((code, j) => counts.set(code, (counts.get(code) ?? 0) + a.next[i]!.counts[j]!));
      const codes = Int32Array.from(counts.keys()).sort();
      return { codes, counts: Uint32Array.from(codes, (c) => counts.get(c)!) };
    });
    return { model: this.model.id, levels: this.model.levels, codeBytes: codeBytesFor(this.model.codebookSizes), next };
  }

  async getItem(id: string): Promise<ItemView | undefined> {
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
    await this.#space.pool.close();
    await this.#link.nc.drain().catch(() => undefined);
  }
}
