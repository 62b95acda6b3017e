/**
 * A cluster router's retrieves: one query asked of every shard (`sidx.query.<shard>`), or the queries of one
 * POST /v1/retrieve/batch asked together (`sidx.queries.<shard>`: one request per shard for as many queries as fit
 * under NATS's max_payload), each query's shard answers merged by score into its top k. The router's encoder encodes
 * every query once (a batch's rows in one pool call per kind, as a single node does); shards refusing the query's
 * model (SIDX_ERR_MODEL_SWAP: a flip under way) make the router encode again with the then served model and ask
 * again (each time counted in sidx_router_swap_retries_total, by route), until cluster.requestTimeoutMs; a shard with
 * no answer by then is missing from the answer, never a hang.
 */
import { SidxError } from '../errors.ts';
import { mergeUnscored } from './merge-order.ts';
import type { ModelSpace } from '../service/model-space.ts';
import { checkEach, encodeEach } from '../service/retrieve-one.ts';
import { queryEncoding, resolveExpand } from '../service/retrieve-steps.ts';
import type { RetrievedItem, RetrieveOutput, RetrieveQuery } from '../service/types.ts';
import { encodeJson, queryBatchSubject, queryMessage, querySubject, type ShardAnswer } from './wire.ts';

type Answer = Extract<ShardAnswer, { ok: true }>;

/** A shard's error that asks the router to try again (the shard serves another model than the query's). */
const SWAP_RETRY_MS = 50;
/** Bytes of a batch request besides its queries' messages. */
const ENVELOPE_BYTES = 1024;

export interface RouterReadsHost {
  /** The served model's space (it changes when the active model flips). */
  space(): ModelSpace;
  askAll<T>(subjectOf: (shard: number) => string, data: Uint8Array): Promise<{ ok: T[]; missingShards: number[]; refused: number[] }>;
  requestTimeoutMs: number;
  maxPayload: number;
  /** Called before each ask again after a refusal (sidx_router_swap_retries_total), with the route asked. */
  retried(route: '/v1/retrieve' | '/v1/retrieve/batch'): void;
}

export async function routeRetrieve(host: RouterReadsHost, q: RetrieveQuery): Promise<RetrieveOutput> {
  const t0 = performance.now();
  const deadline = Date.now() + host.requestTimeoutMs;
  for (;;) {
    const space = host.space();
    const pool = space.pool;
    // Encoded once here: every shard gets the router's beam (or encoder row) with the query.
    const encoded = await queryEncoding(pool, space.info.metric, q, resolveExpand(q.expand, q.embedding !== undefined, pool, q.beamWidth));
    const data = encodeJson(queryMessage({ ...q, encoded }, space.info.id));
    const tEncoded = performance.now();
    const { ok, missingShards, refused } = await host.askAll<Answer>(querySubject, data);
    if (refused.length > 0 && Date.now() + SWAP_RETRY_MS < deadline) {
      host.retried('/v1/retrieve');
      await new Promise((r) => setTimeout(r, SWAP_RETRY_MS));
      continue;
    }
    return merged(host, { ...q, encoded }, space.info.id, ok, [...missingShards, ...refused], tEncoded - t0, performance.now() - t0);
  }
}

/** A shard's answer to a batch request: one answer per query it carried, in order. */
export type ShardBatchAnswer = { ok: true; answers: Answer[] } | Extract<ShardAnswer, { ok: false }>;

export async function routeRetrieveMany(host: RouterReadsHost, qs: readonly RetrieveQuery[]): Promise<RetrieveOutput[]> {
  const t0 = performance.now();
  const deadline = Date.now() + host.requestTimeoutMs;
  for (;;) {
    const space = host.space();
    const { queries } = await encodeEach(space.pool, space.info.metric, qs, checkEach(space.pool, qs));
    const tEncoded = performance.now();
    const messages = queries.map((q) => JSON.stringify(queryMessage(q, space.info.id)));
    const parts = payloadParts(messages, host.maxPayload - ENVELOPE_BYTES);
    const asked = await Promise.all(parts.map(([from, to]) => host.askAll<Extract<ShardBatchAnswer, { ok: true }>>(queryBatchSubject,
      new TextEncoder().encode(`{"model":${JSON.stringify(space.info.id)},"queries":[${messages.slice(from, to).join(',')}]}`))));
    if (asked.some((a) => a.refused.length > 0) && Date.now() + SWAP_RETRY_MS < deadline) {
      host.retried('/v1/retrieve/batch');
      await new Promise((r) => setTimeout(r, SWAP_RETRY_MS));
      continue;
    }
    const totalMs = performance.now() - t0;
    return parts.flatMap(([from, to], p) => {
      const { ok, missingShards, refused } = asked[p]!;
      if (ok.some((a) => a.answers?.length !== to - from)) throw new SidxError('SIDX_ERR_CLUSTER', `a shard answered a batch of ${to - from} queries with another count of answers`);
      return queries.slice(from, to).map((q, j) => merged(host, q, space.info.id, ok.map((a) => a.answers[j]!), [...missingShards, ...refused], tEncoded - t0, totalMs));
    });
  }
}

/** [from, to) ranges of consecutive messages, each range's bytes (with a comma between two) within `budget`; one message at least. */
export function payloadParts(messages: readonly string[], budget: number): Array<[number, number]> {
  const parts: Array<[number, number]> = [];
  let from = 0;
  let bytes = 0;
  messages.forEach((m, i) => {
    const size = Buffer.byteLength(m) + 1;
    if (i > from && bytes + size > budget) {
      parts.push([from, i]);
      from = i;
      bytes = 0;
    }
    bytes += size;
  });
  if (messages.length > 0) parts.push([from, messages.length]);
  return parts;
}

/**
 * The shards' answers to one query (`q` with the router's encoding) merged into its answer, top k: by score, or
 * without a rerank in the order one node gathers them (merge-order.ts), which also orders equal scores; candidates
 * summed.
 */
function merged(host: RouterReadsHost, q: RetrieveQuery, model: string, ok: readonly Answer[], missingShards: number[], encodeMs: number, totalMs: number): RetrieveOutput {
  if (ok.length === 0) throw new SidxError('SIDX_ERR_CLUSTER', `no shard answered within ${host.requestTimeoutMs} ms`);
  const missing = missingShards.sort((x, y) => x - y);
  const answers = ok.map((a) => a.items.map((it): RetrievedItem => ({ ...it, sid: Int32Array.from(it.sid) })));
  const querySids = ok[0]!.querySids.map((x) => Int32Array.from(x));
  // In the order one node gathers them; by score when reranked, ties kept in that order (as one node ranks them).
  const items = mergeUnscored(answers, querySids, q.encoded);
  if (items.some((it) => it.score !== null)) items.sort((x, y) => (y.score ?? -Infinity) - (x.score ?? -Infinity));
  const sum = (key: keyof RetrieveOutput['candidates']) => ok.reduce((n, a) => n + a.candidates[key], 0);
  return {
    model, expand: ok[0]!.expand, items: items.slice(0, q.k), querySids,
    candidates: { exact: sum('exact'), hamming1: sum('hamming1'), beam: sum('beam'), prefix: sum('prefix'), total: sum('total') },
    timingsMs: { encode: encodeMs, beam: 0, candidates: 0, rerank: 0, fetch: 0, total: totalMs },
    ...(missing.length > 0 ? { missingShards: missing } : {}),
  };
}
