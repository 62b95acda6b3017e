/**
 * A shard replica (`sidx serve --role shard --shard I/S`): a normal SidxService plus
 * - the write log: a durable JetStream consumer of `sidx.writes.<I>`, re-created at every start from the position
 *   the catalog has applied (catalog.stream, written in the same LMDB transaction as each write), so a replay after
 *   kill -9 changes nothing twice and a wiped replica catches up from the stream's start;
 * - request-reply (queue group per shard, so any live replica answers): retrieve, item lookup, applied position
 *   (with what the upserts of given log entries did: their SIDs and `replaced`, kept for the last RESULTS_KEPT
 *   entries applied, so a router with cluster.waitApplied answers them), next codes, and the SID trie with its
 *   content tag (shard-sids.ts);
 * - the cluster's registry (shard-models.ts): the active model and re-index jobs. A query encoded with another model
 *   than the one this replica serves is refused with SIDX_ERR_MODEL_SWAP (a flip under way; the router retries).
 */
import { AckPolicy, DeliverPolicy, jetstream, type JsMsg } from '@nats-io/jetstream';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.ts';
import { isSidxError, SidxError } from '../errors.ts';
import type { SidxService } from '../service/sidx-service.ts';
import { connectCluster, shardsInLog, type ClusterLink } from './nats.ts';
import { ClusterRegistry } from './registry.ts';
import { ShardModels } from './shard-models.ts';
import { ShardTrie } from './shard-sids.ts';
import {
  answerOf, appliedSubject, base64ToF32, decodeJson, encodeJson, errorAnswer, itemSubject, nextSubject, queryBatchSubject, querySubject, queryOf, shardQueue,
  trieSubject, trieTagSubject, writeSubject, type NextAnswer, type QueryMessage, type WriteMessage,
} from './wire.ts';

interface Log { info(msg: string): void; warn(msg: string): void; error(msg: string): void }

/** Codes of input a log entry carries that no retry will make valid: the entry is marked applied and skipped. */
const REFUSED_INPUT = new Set(['SIDX_ERR_INVALID_INPUT', 'SIDX_ERR_DIMENSION', 'SIDX_ERR_NOT_FINITE', 'SIDX_ERR_NORM_TOO_LARGE',
  'SIDX_ERR_BASE64', 'SIDX_ERR_BATCH_EMPTY', 'SIDX_ERR_BATCH_TOO_LARGE', 'SIDX_ERR_DUPLICATE_ID']);

/** Log entries whose upsert results (SIDs, replaced) a replica keeps for routers waiting for them. */
const RESULTS_KEPT = 4096;
/** A live replica keeps a pull of this many ms waiting on its consumer; a dead one's lapses within it. */
const FETCH_EXPIRES_MS = 1000;
/** How often a replica catching up at start says how far it is. */
const CATCH_UP_TELL_MS = 5000;

/** What an applied upsert did to each of its items (wire form). */
export interface AppliedItem { id: string; sid: number[]; replaced: boolean }

export class ShardNode {
  #link: ClusterLink;
  #service: SidxService;
  #c: Readonly<Config['cluster']>;
  #log: Log;
  #subs: Subscription[] = [];
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  #results = new Map<string, AppliedItem[]>();
  #models: ShardModels | null = null;
  readonly durable: string;

  private constructor(link: ClusterLink, service: SidxService, c: Readonly<Config['cluster']>, log: Log) {
    this.#link = link;
    this.#service = service;
    this.#c = c;
    this.#log = log;
    this.durable = `shard-${c.shard}-${(c.replica || hostname()).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  static async start(service: SidxService, config: Readonly<Config>, log: Log): Promise<ShardNode> {
    const c = config.cluster;
    const link = await connectCluster(c, `sidx shard ${c.shard}/${c.shards} ${c.replica}`);
    const node = new ShardNode(link, service, c, log);
    try {
      const registry = await ClusterRegistry.open(link.nc, c.registry, c.streamReplicas);
      await registry.agreeShards(c.shards, `shard ${c.shard}`, () => shardsInLog(link, c.stream));
      await node.#refuseLiveNamesake(); // before anything reports under this replica's name
      node.#models = await ShardModels.start(registry, service, config, log);
      await node.#follow();
      await node.#catchUp();
    } catch (err) {
      await node.#models?.close();
      await link.nc.close();
      throw err;
    }
    node.#answer();
    return node;
  }

  /** (Re-)creates this replica's durable consumer at the catalog's applied position + 1. */
  async #consumerFromApplied() {
    const { jsm, nc } = this.#link;
    const applied = this.#service.appliedLogSeq;
    await jsm.consumers.delete(this.#c.stream, this.durable).catch(() => undefined);
    await jsm.consumers.add(this.#c.stream, {
      durable_name: this.durable, ack_policy: AckPolicy.Explicit, filter_subject: writeSubject(this.#c.shard),
      ...(applied > 0n ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Number(applied) + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    this.#log.info(`cluster: shard ${this.#c.shard}/${this.#c.shards} follows ${writeSubject(this.#c.shard)} from seq ${applied + 1n} (consumer ${this.durable})`);
    return jetstream(nc).consumers.get(this.#c.stream, this.durable);
  }

  /**
   * Applies the log in order. After a failure the consumer starts again after the last applied message: the rest of
   * a fetched batch would otherwise come back only after the ack wait, behind later messages that moved the applied
   * position past them, and be acked as applied without being applied.
   */
  async #follow(): Promise<void> {
    let consumer = await this.#consumerFromApplied();
    this.#loop = (async () => {
      while (!this.#stopped) {
        try {
          const batch = await consumer.fetch({ max_messages: this.#c.applyBatch, expires: FETCH_EXPIRES_MS });
          for await (const m of batch) {
            if (this.#stopped) break;
            await this.#apply(m);
          }
        } catch (err) {
          if (this.#stopped) break;
          this.#log.error(`cluster: applying the write log after seq ${this.#service.appliedLogSeq} failed, retrying from the next `
            + `in 1 s: ${(err as Error).message}`);
          await sleep(1000);
          if (this.#stopped) break;
          consumer = await this.#consumerFromApplied().catch((e: unknown) => {
            this.#log.error(`cluster: re-creating consumer ${this.durable} failed (${(e as Error).message}); retrying`);
            return consumer;
          });
        }
      }
    })();
  }

  /**
   * Waits until this replica has applied its subject's log as it stood at start, before it answers any read (and so
   * before `sidx serve` reports ready): a replica started empty, or behind after a crash, would otherwise answer
   * from a catalog that lacks items its peers hold, with no sign of it.
   */
  async #catchUp(): Promise<void> {
    const { jsm } = this.#link;
    const subject = writeSubject(this.#c.shard);
    const lastSeq = async (): Promise<bigint | null> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          return BigInt((await jsm.streams.getMessage(this.#c.stream, { last_by_subj: subject }))?.seq ?? 0);
        } catch {
          await sleep(500);
        }
      }
      return null;
    };
    let last = await lastSeq();
    if (last === null) {
      this.#log.warn(`cluster: shard ${this.#c.shard} could not read the last sequence of ${subject}; it answers without waiting to catch up`);
      return;
    }
    const started = performance.now();
    let told = started;
    while (this.#service.appliedLogSeq < last && !this.#stopped) {
      if (performance.now() - told > CATCH_UP_TELL_MS) {
        told = performance.now();
        last = (await lastSeq()) ?? last; // a message removed from the stream meanwhile must not hold the start for ever
        this.#log.info(`cluster: shard ${this.#c.shard} catching up before it answers: applied the log up to seq `
          + `${this.#service.appliedLogSeq}, to reach ${last}`);
      }
      await sleep(20);
    }
    if (last > 0n) this.#log.info(`cluster: shard ${this.#c.shard} caught up to seq ${last} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  /**
   * Two replicas of a shard under one name (the default, the host name, on one host) would share one durable
   * consumer and each apply only part of the log. A live replica keeps a pull waiting on its consumer, or moves its
   * delivered and acknowledged positions; a dead one's pull (kill -9, a restart of this replica) lapses within
   * FETCH_EXPIRES_MS. So a consumer that, over two such spans, is pulled from or moves is a live namesake's, and this
   * replica is refused. (Two namesakes started at the same moment find no consumer and are not told apart.)
   */
  async #refuseLiveNamesake(): Promise<void> {
    const { jsm } = this.#link;
    const info = () => jsm.consumers.info(this.#c.stream, this.durable).catch(() => null);
    let before = await info();
    if (before === null) return;
    for (let span = 0; span < 2; span++) {
      await sleep(FETCH_EXPIRES_MS + 200);
      const now = await info();
      if (now === null) return;
      const moved = now.delivered.stream_seq !== before.delivered.stream_seq || now.ack_floor.stream_seq !== before.ack_floor.stream_seq;
      if (now.num_waiting > 0 || moved) {
        throw new SidxError('SIDX_ERR_CONFIG', `replica ${JSON.stringify(this.#c.replica || hostname())} of shard ${this.#c.shard} is already `
          + `running (consumer ${this.durable} of stream ${this.#c.stream} is being pulled from): give each replica of a shard a `
          + 'name of its own (--replica, SIDX__CLUSTER__REPLICA; the default is the host name)', { field: 'cluster.replica' });
      }
      before = now;
    }
  }

  async #apply(m: JsMsg): Promise<void> {
    const seq = BigInt(m.seq);
    if (seq <= this.#service.appliedLogSeq) {
      m.ack();
      return;
    }
    let msg: WriteMessage;
    try {
      msg = decodeJson<WriteMessage>(m.data);
    } catch (err) {
      // Not a message a router writes: it can never apply, so it is skipped as refused input is.
      this.#log.warn(`cluster: write log seq ${seq} is not a write message (${(err as Error).message}); skipped`);
      await this.#service.skipLogEntry({ seq });
      m.ack();
      return;
    }
    try {
      if (msg.op === 'upsert') {
        const out = await this.#service.upsert(msg.items.map((it) => ({ id: it.id, vector: base64ToF32(it.v) })), { seq });
        this.#results.set(String(seq), out.items.map((it) => ({ id: it.id, sid: Array.from(it.sid), replaced: it.replaced ?? false })));
        if (this.#results.size > RESULTS_KEPT) this.#results.delete(this.#results.keys().next().value!);
      } else {
        await this.#service.delete(msg.ids, { seq });
      }
    } catch (err) {
      if (!isSidxError(err) || !REFUSED_INPUT.has(err.code)) {
        m.nak(1000);
        throw err;
      }
      this.#log.warn(`cluster: write log seq ${seq} refused (${err.code}: ${err.message}); skipped`);
      await this.#service.skipLogEntry({ seq });
    }
    m.ack();
  }

  #answer(): void {
    const { nc } = this.#link;
    const queue = shardQueue(this.#c.shard);
    const serve = (subject: string, handle: (data: Uint8Array) => Promise<unknown> | unknown) => {
      this.#subs.push(nc.subscribe(subject, {
        queue,
        callback: (_err, msg: Msg) => {
          void (async () => {
            let out: unknown;
            try {
              out = await handle(msg.data);
            } catch (err) {
              out = errorAnswer(err);
            }
            msg.respond(encodeJson(out));
          })();
        },
      }));
    };
    const servedModel = (model: string) => {
      const served = this.#service.model.id;
      if (model !== served) {
        throw new SidxError('SIDX_ERR_MODEL_SWAP', `shard ${this.#c.shard} serves ${served}, the query was encoded with ${model}`, { field: 'model' });
      }
    };
    serve(querySubject(this.#c.shard), async (data) => {
      const m = decodeJson<QueryMessage>(data);
      servedModel(m.model);
      return answerOf(await this.#service.retrieve(queryOf(m)));
    });
    serve(queryBatchSubject(this.#c.shard), async (data) => {
      const m = decodeJson<{ model: string; queries: QueryMessage[] }>(data);
      servedModel(m.model);
      return { ok: true, answers: (await this.#service.retrieveMany(m.queries.map(queryOf))).map(answerOf) };
    });
    serve(itemSubject(this.#c.shard), (data) => {
      const item = this.#service.getItem(decodeJson<{ id: string }>(data).id);
      return { item: item ? { id: item.id, sid: Array.from(item.sid), model: item.model } : null };
    });
    serve(appliedSubject(this.#c.shard), (data) => {
      const { items, vectors } = this.#service.readiness();
      const seqs = decodeJson<{ seqs?: string[] }>(data).seqs ?? [];
      const results = Object.fromEntries(seqs.filter((q) => this.#results.has(q)).map((q) => [q, this.#results.get(q)!]));
      return { seq: String(this.#service.appliedLogSeq), items, vectors, results };
    });
    serve(nextSubject(this.#c.shard), (data): NextAnswer => {
      const m = decodeJson<{ prefixes: number[][]; model: string }>(data);
      const out = this.#service.sids.next(m.prefixes, m.model);
      return { ok: true, model: out.model, levels: out.levels, codeBytes: out.codeBytes, next: out.next.map((n) => ({ codes: Array.from(n.codes), counts: Array.from(n.counts) })) };
    });
    const trie = new ShardTrie(this.#service, nc.info?.max_payload ?? 1024 * 1024);
    serve(trieTagSubject(this.#c.shard), (data) => trie.trieTag(data));
    this.#subs.push(nc.subscribe(trieSubject(this.#c.shard), { queue, callback: (_err, msg: Msg) => trie.streamTrie(msg) }));
  }

  /** Stops answering and applying (after the message in hand), then closes the connection. */
  async close(): Promise<void> {
    this.#stopped = true;
    await this.#models?.close();
    for (const s of this.#subs) s.unsubscribe();
    await this.#loop;
    await this.#link.nc.drain().catch(() => undefined);
  }
}

