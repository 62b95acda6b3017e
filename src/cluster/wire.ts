/**
 * What sidx nodes say to each other over NATS (cluster mode): subjects and JSON payloads, vectors as base64
 * float32 (little-endian, as the HTTP API takes them).
 *
 *   sidx.writes.<shard>   JetStream (the write log): {op: "upsert", items: [{id, v}]} | {op: "delete", ids}
 *   sidx.query.<shard>    request-reply, queue group per shard: a retrieve -> ShardAnswer
 *   sidx.queries.<shard>  request-reply, queue group per shard: {model, queries} (a retrieve batch's queries, as many
 *                         as fit under max_payload) -> {ok, answers: ShardAnswer[]} (router-reads.ts)
 *   sidx.item.<shard>     request-reply: {id} -> {item: {id, sid, model} | null}
 *   sidx.applied.<shard>  request-reply: {} -> {seq, items, vectors}: the write log position the answering replica
 *                         has applied, and what it holds
 *   sidx.next.<shard>     request-reply: {prefixes, model} -> NextAnswer: each prefix's next codes with item counts
 *   sidx.trietag.<shard>  request-reply: {model} -> TrieTagAnswer: the model's trie's content tag on the replica
 *   sidx.trie.<shard>     request, several replies: {model} -> a TrieTagAnswer with n (JSON), the n × L SID codes as
 *                         raw u16 LE in chunks under max_payload, then an empty message (the end)
 */
import { SidxError } from '../errors.ts';
import type { QueryEncoding, RetrieveOutput, RetrieveQuery } from '../service/types.ts';
import type { CodeBytes } from '../sid/next-format.ts';

const WRITES = 'sidx.writes.';
export const writeSubject = (shard: number) => `${WRITES}${shard}`;
/** Every shard's write subject: the write log stream's subjects. */
export const WRITE_SUBJECTS = `${WRITES}>`;
/** The shard a write subject is for, or NaN for another subject. */
export const shardOfWriteSubject = (subject: string) => (subject.startsWith(WRITES) ? Number(subject.slice(WRITES.length)) : Number.NaN);
export const querySubject = (shard: number) => `sidx.query.${shard}`;
export const queryBatchSubject = (shard: number) => `sidx.queries.${shard}`;
export const itemSubject = (shard: number) => `sidx.item.${shard}`;
export const appliedSubject = (shard: number) => `sidx.applied.${shard}`;
export const nextSubject = (shard: number) => `sidx.next.${shard}`;
export const trieTagSubject = (shard: number) => `sidx.trietag.${shard}`;
export const trieSubject = (shard: number) => `sidx.trie.${shard}`;
export const shardQueue = (shard: number) => `sidx-shard-${shard}`;

/** The shard of an item: 32-bit FNV-1a of its id's UTF-8 bytes, modulo the shard count (stable across versions). */
export function shardOf(id: string, shards: number): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(id, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array): T {
  return JSON.parse(dec.decode(data)) as T;
}

/** A typed array's bytes as base64 (host order: little-endian, as record.ts requires). */
export const typedToBase64 = (v: Float32Array | Int32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

function fromBase64<T extends Float32Array | Int32Array>(s: string, make: (n: number) => T): T {
  const b = Buffer.from(s, 'base64');
  const out = make(b.length >> 2);
  new Uint8Array(out.buffer).set(b.subarray(0, out.length * 4));
  return out;
}

export const base64ToF32 = (s: string): Float32Array => fromBase64(s, (n) => new Float32Array(n));
const base64ToI32 = (s: string): Int32Array => fromBase64(s, (n) => new Int32Array(n));

interface WireEncoding {
  beam?: { codes: string; levels: Array<{ level: number; width: number; codes: string; scores: string }> };
  enc?: { codes: string; topCodes: string; topDistances: string };
}

function wireEncoding(e: QueryEncoding): WireEncoding {
  const b = typedToBase64;
  return {
    beam: e.beam && { codes: b(e.beam.codes), levels: e.beam.levels.map((l) => ({ level: l.level, width: l.width, codes: b(l.codes), scores: b(l.scores) })) },
    enc: e.enc && { codes: b(e.enc.codes), topCodes: b(e.enc.topCodes), topDistances: b(e.enc.topDistances) },
  };
}

function encodingOf(w: WireEncoding): QueryEncoding {
  return {
    beam: w.beam && {
      codes: base64ToI32(w.beam.codes),
      levels: w.beam.levels.map((l) => ({ level: l.level, width: l.width, codes: base64ToI32(l.codes), scores: base64ToF32(l.scores) })),
    },
    enc: w.enc && { codes: base64ToI32(w.enc.codes), topCodes: base64ToI32(w.enc.topCodes), topDistances: base64ToF32(w.enc.topDistances) },
  };
}

export type WriteMessage = { op: 'upsert'; items: Array<{ id: string; v: string }> } | { op: 'delete'; ids: string[] };

export interface QueryMessage {
  /** The router's model: a shard serving another one refuses the query (its codes would mean nothing there). */
  model: string;
  embedding?: string;
  sids?: number[][];
  k: number;
  expand?: RetrieveQuery['expand'];
  rerank?: boolean;
  maxCandidates: number;
  beamWidth?: number;
  encoded?: WireEncoding;
}

export function queryMessage(q: RetrieveQuery, model: string): QueryMessage {
  return {
    model, embedding: q.embedding ? typedToBase64(q.embedding) : undefined, sids: q.sids?.map((s) => Array.from(s)), k: q.k,
    expand: q.expand, rerank: q.rerank, maxCandidates: q.maxCandidates, beamWidth: q.beamWidth, encoded: q.encoded && wireEncoding(q.encoded),
  };
}

export function queryOf(m: QueryMessage): RetrieveQuery {
  return {
    embedding: m.embedding !== undefined ? base64ToF32(m.embedding) : undefined, sids: m.sids?.map((s) => Int32Array.from(s)), k: m.k,
    expand: m.expand, rerank: m.rerank, maxCandidates: m.maxCandidates, beamWidth: m.beamWidth, encoded: m.encoded && encodingOf(m.encoded),
  };
}

interface WireItem { id: string; score: number | null; sid: number[]; match: RetrieveOutput['items'][number]['match'] }

/** A shard's answer: its top k, or the error it raised (the router passes a 4xx on as it is). */
export type ShardAnswer =
  | { ok: true; model: string; expand: RetrieveOutput['expand']; items: WireItem[]; querySids: number[][]; candidates: RetrieveOutput['candidates'] }
  | { ok: false; code: string; message: string; field?: string };

export function answerOf(out: RetrieveOutput): ShardAnswer {
  return {
    ok: true, model: out.model, expand: out.expand, querySids: out.querySids.map((s) => Array.from(s)), candidates: out.candidates,
    items: out.items.map((it) => ({ id: it.id, score: it.score, sid: Array.from(it.sid), match: it.match })),
  };
}

export type NextAnswer = { ok: true; model: string; levels: number; codeBytes: CodeBytes; next: Array<{ codes: number[]; counts: number[] }> } | Extract<ShardAnswer, { ok: false }>;

/**
 * A replica's tag of a model's occupied SIDs: a hash of their codes (not of its catalog seq, which differs between
 * replicas of one shard), so two replicas holding the same SIDs give the same tag. `n`: SIDs following (sidx.trie).
 */
export type TrieTagAnswer = { ok: true; model: string; levels: number; tag: string; n?: number } | Extract<ShardAnswer, { ok: false }>;

export function errorAnswer(err: unknown): Extract<ShardAnswer, { ok: false }> {
  if (err instanceof SidxError) return { ok: false, code: err.code, message: err.message, field: err.field };
  return { ok: false, code: 'SIDX_ERR_INTERNAL', message: (err as Error).message };
}
