import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { encodeTrie } from '../../sid/trie-format.ts';
import type { SinceRef, TrieOutput } from '../../service/sid-reads.ts';
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

function rows(flat: Uint16Array, levels: number): number[][] {
  const out = new Array<number[]>(flat.length / levels);
  for (let i = 0; i < out.length; i++) out[i] = Array.from(flat.subarray(i * levels, (i + 1) * levels));
  return out;
}

function trieJson(t: TrieOutput) {
  const head = { model: t.model, levels: t.levels, seq: t.seq.toString() };
  if (t.kind === 'full') return { ...head, kind: 'full' as const, sids: rows(t.added, t.levels) };
  return { ...head, since: t.since.toString(), kind: 'delta' as const, added: rows(t.added, t.levels), removed: rows(t.removed, t.levels) };
}

/** The catalog's SID trie for constrained generation (service/sid-reads.ts; binary layout in docs/sid-trie.md). */
export const sidRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/sids/next', { schema: nextRoute }, async (req) => {
    const service = serviceOf(app);
    const { prefixes, model } = req.body;
    checkBatch(app, prefixes.length, 'prefixes');
    const out = service.sids.next(prefixes, model);
    return {
      model: out.model,
      levels: out.levels,
      next: out.next.map((n) => ({ codes: Array.from(n.codes), counts: Array.from(n.counts) })),
    };
  });

  app.get('/sids/trie', { schema: trieRoute }, async (req, reply) => {
    const service = serviceOf(app);
    const { model, format, since } = req.query;
    // The tag and the answer are read in the same tick: no write can commit between them.
    const tag = service.sids.tag(model);
    const etag = `"${tag.version}.${tag.seq}"`;
    void reply.header('etag', etag).header('cache-control', 'no-cache');
    if (matches(req.headers['if-none-match'], etag)) return reply.status(304).send();
    const out = service.sids.trie(model, since === undefined ? undefined : parseSince(since));
    if (format === 'json') return reply.type('application/json').send(trieJson(out));
    return reply.type('application/octet-stream').send(encodeTrie(out));
  });
};
