/**
 * What sidx nodes say to each other over NATS (cluster mode): subjects and JSON payloads, vectors as base64
 * float32 (little-endian, as the HTTP API takes them).
 *
 *   sidx.writes.<shard>   JetStream (the write log): {op: "upsert", items: [{id, v}]} | {op: "delete", ids}
 *   sidx.query.<shard>    request-reply, queue group per shard: a retrieve -> ShardAnswer
 *   sidx.item.<shard>     request-reply: {id} -> {item: {id, sid, model} | null}
 *   sidx.applied.<shard>  request-reply: {} -> {seq}: the write log position the answering replica has applied
 */
import { SidxError } from '../errors.ts';
import type { RetrieveOutput, RetrieveQuery } from '../service/types.ts';

export const writeSubject = (shard: number) => `sidx.writes.${shard}`;
export const querySubject = (shard: number) => `sidx.query.${shard}`;
export const itemSubject = (shard: number) => `sidx.item.${shard}`;
export const appliedSubject = (shard: number) => `sidx.applied.${shard}`;
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

export const f32ToBase64 = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

export function base64ToF32(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  const out = new Float32Array(b.length >> 2);
  new Uint8Array(out.buffer).set(b.subarray(0, out.length * 4));
  return out;
}

export type WriteMessage = { op: 'upsert'; items: Array<{ id: string; v: string }> } | { op: 'delete'; ids: string[] };

export interface QueryMessage {
  embedding?: string;
  sids?: number[][];
  k: number;
  expand?: RetrieveQuery['expand'];
  rerank?: boolean;
  maxCandidates: number;
  beamWidth?: number;
}

export function queryMessage(q: RetrieveQuery): QueryMessage {
  return {
    embedding: q.embedding ? f32ToBase64(q.embedding) : undefined, sids: q.sids?.map((s) => Array.from(s)), k: q.k,
    expand: q.expand, rerank: q.rerank, maxCandidates: q.maxCandidates, beamWidth: q.beamWidth,
  };
}

export function queryOf(m: QueryMessage): RetrieveQuery {
  return {
    embedding: m.embedding !== undefined ? base64ToF32(m.embedding) : undefined, sids: m.sids?.map((s) => Int32Array.from(s)), k: m.k,
    expand: m.expand, rerank: m.rerank, maxCandidates: m.maxCandidates, beamWidth: m.beamWidth,
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

export function errorAnswer(err: unknown): ShardAnswer {
  if (err instanceof SidxError) return { ok: false, code: err.code, message: err.message, field: err.field };
  return { ok: false, code: 'SIDX_ERR_INTERNAL', message: (err as Error).message };
}
