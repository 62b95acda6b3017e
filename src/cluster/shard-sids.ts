/**
 * A shard replica's part of GET /v1/sids/trie on a router (router-sids.ts merges the shards'):
 * - sidx.trietag.<I>: the content tag of a model's occupied SIDs on this replica (trieTag);
 * - sidx.trie.<I>: those SIDs, streamed (streamTrie): a JSON head with the tag, the codes as raw u16 little-endian
 *   in chunks under NATS's max_payload, then an empty message that ends the answer.
 * The tag is a hash of the SIDs themselves, kept per model until the replica's trie (version, seq) changes: replicas
 * of one shard count their catalog seqs apart, so a seq would tell a router nothing about another replica's SIDs.
 */
import { createHash } from 'node:crypto';
import type { Msg } from '@nats-io/transport-node';
import type { SidxService } from '../service/sidx-service.ts';
import type { TrieOutput } from '../service/sid-reads.ts';
import { decodeJson, encodeJson, errorAnswer, type TrieTagAnswer } from './wire.ts';

/** The hex SHA-256 of a full trie answer's model, levels and codes. */
function contentTag(t: TrieOutput): string {
  const h = createHash('sha256').update(`${t.model}\n${t.levels}\n`);
  h.update(new Uint8Array(t.added.buffer, t.added.byteOffset, t.added.byteLength));
  return h.digest('hex');
}

export class ShardTrie {
  #service: SidxService;
  #maxPayload: number;
  /** Per model id: the trie's tag as of its (version, seq). */
  #tags = new Map<string, { at: string; tag: string }>();

  constructor(service: SidxService, maxPayload: number) {
    this.#service = service;
    this.#maxPayload = maxPayload;
  }

  /** The full trie of model `id` (default: served) with its tag; the tag is remembered for trieTag. */
  #read(id: string | undefined): { out: TrieOutput; head: Extract<TrieTagAnswer, { ok: true }> } {
    const out = this.#service.sids.trie(id);
    const tag = contentTag(out);
    this.#tags.set(out.model, { at: `${out.version}.${out.seq}`, tag });
    return { out, head: { ok: true, model: out.model, levels: out.levels, tag } };
  }

  /** The tag of model `id`'s SIDs: remembered while the trie's (version, seq) is unchanged, else read again. */
  trieTag(data: Uint8Array): TrieTagAnswer {
    const id = decodeJson<{ model?: string }>(data).model;
    const model = this.#service.sids.model(id);
    const { version, seq } = this.#service.sids.tag(id);
    const known = this.#tags.get(model.id);
    if (known && known.at === `${version}.${seq}`) return { ok: true, model: model.id, levels: model.levels, tag: known.tag };
    return this.#read(id).head;
  }

  /** Answers a sidx.trie request: head, chunks, end (an error: its head, then the end). */
  streamTrie(msg: Msg): void {
    let head: TrieTagAnswer;
    let codes: Uint16Array = new Uint16Array(0);
    try {
      const { out, head: h } = this.#read(decodeJson<{ model?: string }>(msg.data).model);
      codes = out.added;
      head = { ...h, n: codes.length / out.levels };
    } catch (err) {
      head = errorAnswer(err);
    }
    msg.respond(encodeJson(head));
    const bytes = new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength);
    const chunk = Math.max(2, Math.floor((this.#maxPayload * 0.9) / 2) * 2);
    for (let at = 0; at < bytes.length; at += chunk) msg.respond(bytes.subarray(at, at + chunk));
    msg.respond(new Uint8Array(0));
  }
}
