import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { NextOutput, SinceRef, TrieOutput } from '../../service/sid-reads.ts';
import { nextRoute, trieRoute } from '../schemas/sids.ts';
import { checkBatch, serviceOf } from './service.ts';

const U64_MAX = (1n << 64n) - 1n;

/** "12" or "3.12" (an ETag without quotes); a seq beyond u64 is clamped (it is in the future: full snapshot). */
function parseSince(text: string): SinceRef {
  const dot = text.indexOf('.');
  const seq = BigInt(dot < 0 ? text : text.slice(dot + 1));
  return { seq: seq > U64_MAX ? U64_MAX : seq, ...(dot < 0 ? {} : { version: Number(text.slice(0, dot)) }) };
}

/** True when an If-None-Match header (a list, weak tags allowed, or *) matches `etag`. */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}

/*
 * Both routes write their JSON by hand: the answers are large arrays of small integers (a 1,000-prefix `next` is
 * ~10^5 codes), which TypedArray.join turns into text several times faster than a schema serializer walking
 * number[] arrays. The shapes are those of schemas/sids.ts (test/http/sids.test.ts compares them).
 */

/** `[[1,2,3],[1,2,4]]` from flat n × L codes. */
function rowsJson(flat: Uint16Array, levels: number): string {
  const parts = new Array<string>(flat.length / levels);
  for (let i = 0; i < parts.length; i++) parts[i] = `[${flat.subarray(i * levels, (i + 1) * levels).join(',')}]`;
  return `[${parts.join(',')}]`;
}

function trieJson(t: TrieOutput): string {
  const head = `{"model":${JSON.stringify(t.model)},"levels":${t.levels},"seq":"${t.seq}"`;
  if (t.kind === 'full') return `${head},"kind":"full","sids":${rowsJson(t.added, t.levels)}}`;
  return `${head},"since":"${t.since}","kind":"delta","added":${rowsJson(t.added, t.levels)},"removed":${rowsJson(t.removed, t.levels)}}`;
}

/**
 * JSON of one `next` entry, cached by the entry's identity: the trie hands out one object per prefix until a write
 * changes it, and dense levels repeat (1,000 one-code prefixes name at most K nodes), so most entries are joined
 * once. The cache holds an entry only as long as the trie does.
 */
const entryJson = new WeakMap<object, string>();

function nextJson(out: NextOutput): string {
  const parts = out.next.map((n) => {
    let s = entryJson.get(n);
    if (s === undefined) {
      s = `{"codes":[${n.codes.join(',')}],"counts":[${n.counts.join(',')}]}`;
      entryJson.set(n, s);
    }
    return s;
  });
  return `{"model":${JSON.stringify(out.model)},"levels":${out.levels},"next":[${parts.join(',')}]}`;
}

/**
 * True when the Accept header prefers application/octet-stream to application/json: listed with q > 0, and JSON is
 * not listed with a higher q (or the same q earlier). Anything else, a missing header included, gets JSON.
 */
function wantsBinary(accept: string | undefined): boolean {
  if (accept === undefined || !accept.toLowerCase().includes('application/octet-stream')) return false;
  let best: 'json' | 'binary' | null = null;
  let bestQ = 0;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    const kind = type === 'application/octet-stream' ? 'binary' : type === 'application/json' ? 'json' : null;
    if (kind === null) continue;
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (q > bestQ) {
      best = kind;
      bestQ = q;
    }
  }
  return best === 'binary';
}

/** The catalog's SID trie for constrained generation (service/sid-reads.ts; binary layout in docs/sid-trie.md). */
export const sidRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/sids/next', { schema: nextRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const { prefixes, model } = req.body;
    checkBatch(app, prefixes.length, 'prefixes');
    const out = await service.sids.next(prefixes, model);
    void reply.header('vary', 'accept');
    if (wantsBinary(req.headers.accept)) return reply.type('application/octet-stream').send(service.sids.nextBinary(out) as never);
    // A string with its content type is sent as is (no serializer); the type provider only knows the object shape.
    return reply.type('application/json').send(nextJson(out) as never);
  });

  app.get('/sids/trie', { schema: trieRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const { model, format, since } = req.query;
    const tag = await service.sids.tag(model);
    const etag = `"${tag.version}.${tag.seq}"`;
    void reply.header('etag', etag).header('cache-control', 'no-cache');
    if (matches(req.headers['if-none-match'], etag)) return reply.status(304).send();
    const out = await service.sids.trie(model, since === undefined ? undefined : parseSince(since));
    // The tag of what is sent: on a single node the same (tag and answer are read in the same tick); on a cluster
    // router a write, or another replica answering, may come between the two asks.
    void reply.header('etag', `"${out.version}.${out.seq}"`);
    if (format === 'json') return reply.type('application/json').send(trieJson(out));
    return reply.type('application/octet-stream').send(service.sids.binary(out));
  });
};
