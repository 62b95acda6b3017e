/**
 * The JSON of a POST /v1/retrieve answer, written straight from the service's RetrieveOutput: the same text
 * fast-json-stringify writes from RetrieveResponseSchema (property order, number formatting, optional fields;
 * test/http/retrieve-json.test.ts holds them equal), without first copying every SID into a number array and every
 * item into a new object for it: a beam answer (10 items, 33 SIDs) took 6.8-8.2 µs with that copy, 5.6-5.7 µs here
 * (`node --import tsx bench/hot-reads.bench.ts --ops json`), and leaves no garbage behind. The schema stays the route's
 * contract and its OpenAPI.
 */
import type { RetrieveOutput } from '../service/types.ts';

/** The content type Fastify gives a JSON answer it serialises itself (a custom serializer sets none). */
export const JSON_TYPE = 'application/json; charset=utf-8';

/** Fastify's reply.serializer for a 200 answer of /v1/retrieve; `payload` is the service's RetrieveOutput. */
export function retrieveAnswerJson(payload: unknown): string {
  const out = payload as RetrieveOutput;
  let s = `{"model":${JSON.stringify(out.model)},"expand":"${out.expand}","items":[`;
  const items = out.items;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    s += `${i > 0 ? ',' : ''}{"id":${JSON.stringify(it.id)},"score":${scoreJson(it.score)},"sid":${sidJson(it.sid)},"match":"${it.match}"}`;
  }
  s += '],"querySids":[';
  const sids = out.querySids;
  for (let i = 0; i < sids.length; i++) s += (i > 0 ? ',' : '') + sidJson(sids[i]!);
  const c = out.candidates;
  const t = out.timingsMs;
  s += `],"candidates":{"exact":${int(c.exact)},"hamming1":${int(c.hamming1)},"beam":${int(c.beam)},"prefix":${int(c.prefix)},"total":${int(c.total)}}`
    + `,"timingsMs":{"encode":${finite(t.encode)},"beam":${finite(t.beam)},"candidates":${finite(t.candidates)}`
    + `,"rerank":${finite(t.rerank)},"fetch":${finite(t.fetch)},"total":${finite(t.total)}}`;
  if (out.missingShards) s += `,"partial":true,"missingShards":[${out.missingShards.map(int).join(',')}]`;
  return `${s}}`;
}

/** Fastify's reply.serializer for a 200 answer of /v1/retrieve/batch; `payload` is `{results}` of RetrieveOutputs. */
export function retrieveBatchJson(payload: unknown): string {
  const { results } = payload as { results: readonly RetrieveOutput[] };
  let s = '{"results":[';
  for (let i = 0; i < results.length; i++) s += (i > 0 ? ',' : '') + retrieveAnswerJson(results[i]);
  return `${s}]}`;
}

/** A count the schema types as an integer: anything else is a bug that must not become invalid JSON (a 500). */
function int(x: number): number {
  if (!Number.isSafeInteger(x)) throw new Error(`retrieve answer: ${String(x)} where the response schema has an integer`);
  return x;
}

function finite(x: number): number {
  if (!Number.isFinite(x)) throw new Error(`retrieve answer: ${String(x)} where the response schema has a number`);
  return x;
}

function sidJson(codes: Int32Array): string {
  let s = '[';
  for (let l = 0; l < codes.length; l++) s += (l > 0 ? ',' : '') + codes[l]!;
  return `${s}]`;
}

/** A score: shortest round-trip digits (as fast-json-stringify); null without rerank, and for a non-finite score. */
function scoreJson(x: number | null): string {
  return x === null || !Number.isFinite(x) ? 'null' : `${x}`;
}
