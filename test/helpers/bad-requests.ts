/**
 * fast-check generators of malformed API requests, each one invalid by construction (so a 2xx answer is a bug):
 * a valid request for a route with 1-2 fields broken (wrong types, sizes, NaN/Infinity, numbers beyond float32,
 * broken base64, out-of-range k/SIDs, empty/over-limit/duplicate batches, unknown fields, missing fields), broken
 * JSON text, wrong content types, bodies over the body limit, bad item-id paths and wrong methods.
 */
import fc from 'fast-check';

export interface FuzzSpec {
  dim: number;
  levels: number;
  codebookSize: number;
  maxBatch: number;
  maxK: number;
  maxCandidates: number;
  bodyLimit: number;
  modelId: string;
}

export interface BadRequest {
  family: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  url: string;
  headers: Record<string, string>;
  payload?: string;
  /** The status this family must get, when it is that specific. */
  expect?: number;
}

type Body = Record<string, unknown>;
type Route = 'encode' | 'upsert' | 'delete' | 'retrieve';
const URL_OF: Record<Route, string> = { encode: '/v1/encode', upsert: '/v1/items', delete: '/v1/items/delete', retrieve: '/v1/retrieve' };
const JSON_HEADERS = { 'content-type': 'application/json' };
const EXPAND_MODES = ['none', 'hamming1', 'auto', 'beam'];

const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
const junk = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 8 }), fc.object({ maxDepth: 1, maxKeys: 2 }));
const nonNumber = junk.filter((v) => typeof v !== 'number');
const notArrayNorString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 1, maxKeys: 2 }));

/** Replaces one element of `arr` (at a generated index) with a generated value. */
function replaceOne<T, U>(arr: fc.Arbitrary<T[]>, value: fc.Arbitrary<U>): fc.Arbitrary<Array<T | U>> {
  return fc.tuple(arr, value, fc.nat()).map(([a, v, i]) => {
    const out: Array<T | U> = [...a];
    out[i % out.length] = v;
    return out;
  });
}

export function makeArbitraries(spec: FuzzSpec) {
  const { dim, levels, codebookSize: K, maxBatch, maxK } = spec;
  const unit = fc.double({ min: -1, max: 1, noNaN: true });
  const floats = fc.array(unit, { minLength: dim, maxLength: dim });
  const goodEmbedding = fc.oneof(floats, floats.map((a) => b64(Float32Array.from(a))));
  const goodId = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 });
  const goodSid = fc.array(fc.integer({ min: 0, max: K - 1 }), { minLength: levels, maxLength: levels });
  const batch = <T>(a: fc.Arbitrary<T>) => fc.array(a, { minLength: 1, maxLength: maxBatch });

  const badEmbedding = fc.oneof(
    fc.array(unit, { maxLength: 2 * dim + 2 }).filter((a) => a.length !== dim),
    replaceOne(floats, nonNumber),
    replaceOne(floats, fc.oneof(fc.double({ min: 3.5e38, max: 1.7e308 }), fc.double({ min: -1.7e308, max: -3.5e38 }))),
    fc.uint8Array({ maxLength: 8 * dim }).filter((b) => b.length !== 4 * dim).map((b) => Buffer.from(b).toString('base64')),
    replaceOne(floats, fc.constantFrom(NaN, Infinity, -Infinity)).map((a) => b64(Float32Array.from(a as number[]))),
    fc.tuple(floats, fc.nat(), fc.constantFrom('*', '!', '-', '_', ' ', '\n', '.', '=', 'é', '\u0000')).map(([a, i, c]) => {
      const s = b64(Float32Array.from(a));
      const p = i % (s.length - 2); // not into the padding, where '=' belongs
      return s.slice(0, p) + c + s.slice(p + 1);
    }),
    fc.tuple(floats, fc.nat()).map(([a, i]) => {
      const s = b64(Float32Array.from(a));
      const p = i % s.length;
      return s.slice(0, p) + s.slice(p + 1);
    }),
    notArrayNorString,
  );
  const badId = fc.oneof(
    notArrayNorString,
    fc.constant(''),
    fc.string({ unit: 'binary-ascii', minLength: 513, maxLength: 600 }),
    fc.tuple(fc.string({ maxLength: 4 }), fc.integer({ min: 0xd800, max: 0xdfff })).map(([s, c]) => s + String.fromCharCode(c)),
  );
  const nonInteger = fc.double({ min: 0.001, max: 1e6, noNaN: true }).filter((x) => !Number.isInteger(x));
  const badK = fc.oneof(fc.constant(0), fc.integer({ max: -1 }), fc.integer({ min: maxK + 1 }), fc.constant(1e300), nonInteger, junk.filter((v) => typeof v !== 'number'));
  const badMaxCandidates = fc.oneof(fc.constant(0), fc.integer({ max: -1 }), fc.integer({ min: spec.maxCandidates + 1 }), nonInteger, fc.string({ maxLength: 4 }));
  const badSid = fc.oneof(
    fc.array(fc.integer({ min: 0, max: K - 1 }), { maxLength: levels + 3 }).filter((s) => s.length !== levels),
    replaceOne(goodSid, fc.oneof(fc.integer({ min: K, max: 70000 }), fc.integer({ max: -1 }), nonInteger, nonNumber)),
    notArrayNorString,
  );
  const badSids = fc.oneof(
    fc.constant([]),
    notArrayNorString,
    replaceOne(fc.array(goodSid, { minLength: 1, maxLength: 3 }), badSid),
    fc.array(goodSid, { minLength: maxBatch + 1, maxLength: maxBatch + 3 }),
  );
  const badBatchOf = <T>(good: fc.Arbitrary<T>) =>
    fc.oneof(fc.constant([]), notArrayNorString, fc.array(good, { minLength: maxBatch + 1, maxLength: maxBatch + 2 }));
  const unknownKey = (allowed: string[]) => fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !allowed.includes(k) && k !== '__proto__');

  const item = fc.record({ id: goodId, embedding: goodEmbedding });
  const bases: Record<Route, fc.Arbitrary<Body>> = {
    encode: fc.record({ embeddings: batch(goodEmbedding), model: fc.constant(spec.modelId) }, { requiredKeys: ['embeddings'] }),
    upsert: fc.uniqueArray(item, { minLength: 1, maxLength: maxBatch, selector: (it) => it.id }).map((items) => ({ items })),
    delete: fc.uniqueArray(goodId, { minLength: 1, maxLength: maxBatch }).map((ids) => ({ ids })),
    retrieve: fc.oneof(
      fc.record({ embedding: goodEmbedding, k: fc.integer({ min: 1, max: maxK }), expand: fc.constantFrom('none', 'hamming1', 'auto'), rerank: fc.boolean() }, { requiredKeys: ['embedding'] }),
      fc.record({ sids: fc.array(goodSid, { minLength: 1, maxLength: maxBatch }), k: fc.integer({ min: 1, max: maxK }), maxCandidates: fc.integer({ min: maxK, max: spec.maxCandidates }) }, { requiredKeys: ['sids'] }),
    ),
  };

  type Mutation = fc.Arbitrary<(b: Body) => Body>;
  const set = (path: (b: Body) => { obj: Record<string, unknown>; key: string } | undefined, value: fc.Arbitrary<unknown>): Mutation =>
    value.map((v) => (b: Body) => {
      const target = path(b);
      if (target) target.obj[target.key] = v;
      return b;
    });
  const top = (key: string) => (b: Body) => ({ obj: b, key });
  const inArray = (arrayKey: string, field?: string) => (b: Body) => {
    const arr = b[arrayKey] as unknown[] | undefined;
    if (!Array.isArray(arr) || arr.length === 0) return undefined;
    if (!field) return { obj: arr as unknown as Record<string, unknown>, key: '0' };
    const first: unknown = arr[0];
    return first !== null && typeof first === 'object' ? { obj: first as Record<string, unknown>, key: field } : undefined;
  };
  // A mutation applied after another one may find its target gone; it is then a no-op (the body is invalid already).
  const objectAt = (b: Body, arrayKey?: string): Body | undefined => {
    const obj = arrayKey ? (Array.isArray(b[arrayKey]) ? (b[arrayKey] as unknown[])[0] : undefined) : b;
    return obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? (obj as Body) : undefined;
  };
  const drop = (key: string, arrayKey?: string): Mutation => fc.constant((b: Body) => {
    const obj = objectAt(b, arrayKey);
    if (obj) delete obj[key];
    return b;
  });
  const extra = (allowed: string[], arrayKey?: string): Mutation => fc.tuple(unknownKey(allowed), junk).map(([k, v]) => (b: Body) => {
    const obj = objectAt(b, arrayKey);
    if (obj) obj[k] = v;
    return b;
  });
  const duplicate = (arrayKey: string): Mutation => fc.constant((b: Body) => {
    const arr = b[arrayKey];
    if (Array.isArray(arr) && arr.length > 0) arr.push(arr[0]);
    return b;
  });

  const mutations: Record<Route, Mutation[]> = {
    encode: [
      set(top('embeddings'), badBatchOf(goodEmbedding)),
      set(inArray('embeddings'), badEmbedding),
      set(top('model'), fc.oneof(fc.string({ maxLength: 10 }).filter((s) => s !== spec.modelId), notArrayNorString)),
      drop('embeddings'),
      extra(['embeddings', 'model']),
    ],
    upsert: [
      set(top('items'), badBatchOf(item)),
      set(inArray('items'), notArrayNorString),
      set(inArray('items', 'id'), badId),
      set(inArray('items', 'embedding'), badEmbedding),
      drop('items'),
      drop('id', 'items'),
      drop('embedding', 'items'),
      extra(['id', 'embedding'], 'items'),
      extra(['items']),
      duplicate('items'),
    ],
    delete: [
      set(top('ids'), badBatchOf(goodId)),
      set(inArray('ids'), badId),
      drop('ids'),
      extra(['ids']),
      duplicate('ids'),
    ],
    retrieve: [
      set(top('embedding'), badEmbedding),
      set(top('sids'), badSids),
      set(top('k'), badK),
      set(top('maxCandidates'), badMaxCandidates),
      set(top('expand'), fc.oneof(fc.string({ maxLength: 10 }).filter((s) => !EXPAND_MODES.includes(s)), notArrayNorString)),
      set(top('rerank'), junk.filter((v) => typeof v !== 'boolean')),
      // The bases never ask for expand "beam", so even a well-formed beamWidth is refused.
      set(top('beamWidth'), fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ max: 0 }), fc.integer({ min: 4097 }), nonInteger, fc.string({ maxLength: 4 }))),
      // Neither an embedding nor SIDs; rerank asked for with SIDs only.
      fc.constant((b: Body) => ({ k: b.k ?? 3 })),
      fc.constant((b: Body) => ({ sids: b.sids ?? [Array(levels).fill(0)], rerank: true })),
      extra(['embedding', 'sids', 'k', 'expand', 'rerank', 'maxCandidates', 'beamWidth']),
    ],
  };

  const routeArb = fc.constantFrom<Route>('encode', 'upsert', 'delete', 'retrieve');
  const validBody = routeArb.chain((route) => bases[route].map((body) => ({ route, body })));

  const mutated: fc.Arbitrary<BadRequest> = routeArb.chain((route) =>
    fc.tuple(bases[route], fc.array(fc.oneof(...mutations[route]), { minLength: 1, maxLength: 2 })).map(([base, muts]) => {
      let body = structuredClone(base);
      for (const m of muts) body = m(body);
      return { family: `mutated ${route}`, method: 'POST' as const, url: URL_OF[route], headers: JSON_HEADERS, payload: JSON.stringify(body) };
    }),
  );

  const notJson = fc.oneof(
    fc.string({ maxLength: 40 }).filter((s) => {
      try {
        const v = JSON.parse(s);
        return v === null || typeof v !== 'object' || Array.isArray(v); // parses, but not to an object: still invalid
      } catch {
        return true;
      }
    }),
    fc.constantFrom('', ' ', 'null', '[]', '"x"', '1', 'true', '{', '}', '{"a":}', "{'items':[]}", '{"k":NaN}', '{"k":Infinity}', '{"k":-Infinity}', '{"k":1,}', '{"k":undefined}', '{"k":1}//c', '\u0000', '\ufeff{}x'),
  );
  const brokenJson: fc.Arbitrary<BadRequest> = fc.oneof(
    fc.tuple(validBody, fc.nat()).map(([{ route, body }, n]) => {
      const text = JSON.stringify(body);
      return { family: 'truncated JSON', method: 'POST' as const, url: URL_OF[route], headers: JSON_HEADERS, payload: text.slice(0, n % text.length) };
    }),
    fc.tuple(validBody, fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '0x10', '01', '+1', '.5')).map(([{ route, body }, tok]) => {
      // A number token JSON does not allow (or one beyond double range) in place of the first number.
      const text = JSON.stringify(body);
      const m = /-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.replace(/"(?:[^"\\]|\\.)*"/g, (s) => ' '.repeat(s.length)));
      const payload = m ? text.slice(0, m.index) + tok + text.slice(m.index + m[0].length) : `${text}${tok}`;
      return { family: 'bad number token', method: 'POST' as const, url: URL_OF[route], headers: JSON_HEADERS, payload };
    }),
    fc.tuple(validBody, fc.constantFrom('x', '}', ']', ',', '{}', '"')).map(([{ route, body }, tail]) => ({
      family: 'trailing garbage', method: 'POST' as const, url: URL_OF[route], headers: JSON_HEADERS, payload: JSON.stringify(body) + tail,
    })),
    fc.tuple(routeArb, notJson).map(([route, payload]) => ({ family: 'not a JSON object', method: 'POST' as const, url: URL_OF[route], headers: JSON_HEADERS, payload })),
  );

  const wrongContentType: fc.Arbitrary<BadRequest> = fc
    .tuple(validBody, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream'))
    // The app parses application/json only (src/http/app.ts removes Fastify's text/plain parser).
    .map(([{ route, body }, type]) => ({
      family: 'wrong content type', method: 'POST' as const, url: URL_OF[route], headers: { 'content-type': type }, payload: JSON.stringify(body),
      expect: 415,
    }));

  const oversized: fc.Arbitrary<BadRequest> = fc.tuple(validBody, fc.integer({ min: 1, max: 4 * spec.bodyLimit })).map(([{ route, body }, pad]) => {
    const text = JSON.stringify(body);
    const payload = text.slice(0, -1) + ' '.repeat(Math.max(0, spec.bodyLimit - text.length) + pad) + '}';
    return { family: 'oversized body', method: 'POST' as const, url: URL_OF[route], headers: JSON_HEADERS, payload, expect: 413 };
  });

  const badPath: fc.Arbitrary<BadRequest> = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 10 })
    .map((id) => ({ family: 'unknown item', method: 'GET' as const, url: `/v1/items/never-${encodeURIComponent(id)}`, headers: {}, expect: 404 }));

  /** Paths refused by Fastify's router before any handler runs (malformed percent-encoding, over-long parameters). */
  const routerLevelBadPath: fc.Arbitrary<BadRequest> = fc.oneof(
    fc.string({ unit: 'binary-ascii', minLength: 101, maxLength: 700 }).map((id) => ({ family: 'long item id path', url: `/v1/items/${encodeURIComponent(id)}` })),
    fc.constantFrom('%', '%E0%A4%A', '%ZZ', 'a%', '%C0%AF', '%ED%A0%80').map((p) => ({ family: 'broken percent-encoding', url: `/v1/items/${p}` })),
  ).map((r) => ({ ...r, method: 'GET' as const, headers: {} }));

  const wrongMethod: fc.Arbitrary<BadRequest> = fc
    .tuple(validBody, fc.constantFrom<BadRequest['method']>('PUT', 'DELETE', 'PATCH', 'GET'))
    .map(([{ route, body }, method]) => ({ family: 'wrong method', method, url: URL_OF[route], headers: method === 'GET' ? {} : JSON_HEADERS, payload: method === 'GET' ? undefined : JSON.stringify(body), expect: 404 }));

  const badRequest: fc.Arbitrary<BadRequest> = fc.oneof(
    { arbitrary: mutated, weight: 12 },
    { arbitrary: brokenJson, weight: 4 },
    { arbitrary: wrongContentType, weight: 1 },
    { arbitrary: oversized, weight: 1 },
    { arbitrary: badPath, weight: 2 },
    { arbitrary: routerLevelBadPath, weight: 1 },
    { arbitrary: wrongMethod, weight: 1 },
  );
  return { badRequest, routerLevelBadPath, goodEmbedding };
}
