/**
 * The SID trie routes on a cluster router, over every shard (an item's SID is on its shard only, and one SID's items
 * are spread over many shards):
 * - POST /v1/sids/next: per prefix, the union of the shards' next codes with their item counts summed;
 * - GET /v1/sids/trie: the union of the shards' occupied SIDs (sidx.trie, streamed in chunks under max_payload).
 *   Its seq is not a catalog seq (each replica counts its own): it is a 64-bit digest of the shards' content tags
 *   (a hash of each shard's SIDs, shard-sids.ts) in shard order, so the ETag "<registry version>.<digest>" changes
 *   when any shard's SIDs change, stays when none did (whichever replica answers), and If-None-Match gets a 304.
 *   `since` is not merged: a delta needs per-replica seqs that a queue group does not keep apart (two replicas of a
 *   shard count differently), so a router always answers a full snapshot (kind "full"), which the API allows.
 * Every shard must answer: without one, the next codes and the trie would lack its SIDs and a generator decoding
 * under them would miss items, so the answer is a 503 SIDX_ERR_CLUSTER naming the shards, after at most
 * cluster.requestTimeoutMs (at once where NATS knows no replica is subscribed).
 */
import { createHash } from 'node:crypto';
import { createInbox, type NatsConnection } from '@nats-io/transport-node';
import { SidxError } from '../errors.ts';
import type { ActiveModel } from '../service/model-space.ts';
import type { NextOutput, SinceRef, TrieOutput } from '../service/sid-reads.ts';
import { encodeNext } from '../sid/next-format.ts';
import { encodeTrie } from '../sid/trie-format.ts';
import { decodeJson, encodeJson, nextSubject, trieSubject, trieTagSubject, type NextAnswer, type ShardAnswer, type TrieTagAnswer } from './wire.ts';

type Failed = Extract<ShardAnswer, { ok: false }>;
type TrieHead = Extract<TrieTagAnswer, { ok: true }>;

/** What the router lends: its connection, settings, served model, the registry's model versions and its scatter. */
export interface RouterSidsHost {
  nc: NatsConnection;
  shards: number;
  timeoutMs: number;
  served: () => ActiveModel;
  /** The registry's version of model `id` (0 when it is not registered: the shards refuse it first). */
  version: (id: string) => Promise<number>;
  askAll: <T>(subjectOf: (shard: number) => string, data: Uint8Array) => Promise<{ ok: T[]; missingShards: number[] }>;
}

const incomplete = (missing: number[], what: string) =>
  new SidxError('SIDX_ERR_CLUSTER', `shard(s) ${missing.join(', ')} did not answer: ${what} would lack their SIDs`);

/** Lexicographic order of SID i of `a` and SID j of `b` (L codes each). */
function compareAt(a: Uint16Array, i: number, b: Uint16Array, j: number, L: number): number {
  for (let l = 0; l < L; l++) {
    const d = a[i * L + l]! - b[j * L + l]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** The sorted union of two sorted, duplicate-free flat lists of L-code SIDs. */
export function unionSids(a: Uint16Array, b: Uint16Array, L: number): Uint16Array {
  const na = a.length / L;
  const nb = b.length / L;
  const out = new Uint16Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < na || j < nb) {
    const c = i >= na ? 1 : j >= nb ? -1 : compareAt(a, i, b, j, L);
    if (c <= 0) out.set(a.subarray(i * L, (i + 1) * L), n * L);
    else out.set(b.subarray(j * L, (j + 1) * L), n * L);
    if (c <= 0) i++;
    if (c >= 0) j++;
    n++;
  }
  return out.slice(0, n * L);
}

/** The u64 digest of the shards' tags in shard order: the router's trie "seq". */
function digestOf(tags: string[]): bigint {
  return createHash('sha256').update(tags.join('\n')).digest().readBigUInt64BE(0);
}

export class RouterSids {
  #h: RouterSidsHost;

  constructor(host: RouterSidsHost) {
    this.#h = host;
  }

  nextBinary(out: NextOutput): Buffer {
    return encodeNext(out);
  }

  binary(t: TrieOutput): Buffer {
    return encodeTrie(t);
  }

  /** /v1/sids/next over the shards: per prefix, the union of their next codes with summed counts (every shard needed). */
  async next(prefixes: readonly (readonly number[])[], modelId?: string): Promise<NextOutput> {
    const served = this.#h.served();
    const { ok, missingShards } = await this.#h.askAll<Extract<NextAnswer, { ok: true }>>(nextSubject, encodeJson({ prefixes, model: modelId ?? served.id }));
    if (missingShards.length > 0) throw incomplete(missingShards, 'the next codes');
    const first = ok[0]!;
    if (ok.some((a) => a.model !== first.model || a.levels !== first.levels)) {
      throw new SidxError('SIDX_ERR_CLUSTER', `the shards answered for different models (${ok.map((a) => a.model).join(', ')})`);
    }
    const next = prefixes.map((_, i) => {
      const counts = new Map<number, number>();
      for (const a of ok) a.next[i]!.codes.forEach((code, j) => counts.set(code, (counts.get(code) ?? 0) + a.next[i]!.counts[j]!));
      const codes = Int32Array.from(counts.keys()).sort();
      return { codes, counts: Uint32Array.from(codes, (c) => counts.get(c)!) };
    });
    // The model the shards answered for: `modelId` may name a re-index target of another shape than the served one.
    return { model: first.model, levels: first.levels, codeBytes: first.codeBytes, next };
  }

  /** The ETag parts of the cluster's trie of `modelId` (default: the served model): registry version, shards' digest. */
  async tag(modelId?: string): Promise<{ version: number; seq: bigint }> {
    const model = modelId ?? this.#h.served().id;
    const { ok, missingShards } = await this.#h.askAll<TrieHead>(trieTagSubject, encodeJson({ model }));
    if (missingShards.length > 0) throw incomplete(missingShards, 'the SID trie');
    return { version: await this.#h.version(model), seq: digestOf(ok.map((a) => a.tag)) };
  }

  /** Every occupied SID of the model on any shard; `since` is not merged (see above): always a full snapshot. */
  async trie(modelId?: string, _since?: SinceRef): Promise<TrieOutput> {
    const model = modelId ?? this.#h.served().id;
    const data = encodeJson({ model });
    const answers = await Promise.all(Array.from({ length: this.#h.shards }, (_, s) => this.#stream(s, data)));
    const failed = answers.find((a): a is { head: Failed; codes: Uint16Array } => a !== null && !a.head.ok);
    if (failed) throw new SidxError(failed.head.code as never, failed.head.message, { field: failed.head.field });
    const missing = answers.flatMap((a, s) => (a === null ? [s] : []));
    if (missing.length > 0) throw incomplete(missing, 'the SID trie');
    const ok = answers as Array<{ head: TrieHead; codes: Uint16Array }>;
    const { levels } = ok[0]!.head;
    if (ok.some((a) => a.head.model !== ok[0]!.head.model || a.head.levels !== levels)) {
      throw new SidxError('SIDX_ERR_CLUSTER', `the shards answered for different models (${ok.map((a) => a.head.model).join(', ')})`);
    }
    const added = ok.map((a) => a.codes).reduce((u, c) => unionSids(u, c, levels));
    return {
      model: ok[0]!.head.model, version: await this.#h.version(model), levels, seq: digestOf(ok.map((a) => a.head.tag)),
      kind: 'full', since: 0n, added, removed: new Uint16Array(0),
    };
  }

  /**
   * One replica's trie of shard `s`: its head and codes, or null when none answered whole within
   * cluster.requestTimeoutMs of the last message (no replica: NATS's no-responders status, at once).
   */
  async #stream(s: number, data: Uint8Array): Promise<{ head: TrieHead | Failed; codes: Uint16Array } | null> {
    const { nc, timeoutMs } = this.#h;
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    let timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
    const parts: Uint8Array[] = [];
    let ended = false;
    try {
      nc.publish(trieSubject(s), data, { reply: inbox });
    } catch {
      clearTimeout(timer);
      sub.unsubscribe();
      return null; // the connection is closed or draining
    }
    try {
      for await (const m of sub) {
        if (m.data.length === 0) {
          ended = m.headers === undefined; // an empty message with a status header: no replica subscribed
          break;
        }
        parts.push(m.data);
        clearTimeout(timer);
        timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
      }
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    if (!ended || parts.length === 0) return null;
    const head = decodeJson<TrieHead | Failed>(parts[0]!);
    const bytes = parts.slice(1).reduce((n, p) => n + p.length, 0);
    const codes = new Uint16Array(bytes / 2);
    const view = new Uint8Array(codes.buffer);
    let at = 0;
    for (const p of parts.slice(1)) {
      view.set(p, at);
      at += p.length;
    }
    if (head.ok && codes.length !== (head.n ?? 0) * head.levels) return null; // a lost chunk: never a partial list
    return { head, codes };
  }
}
