/**
 * The JSON body parser's fast path answers exactly as Fastify's default parser: the same bodies and the same errors
 * (poisoned keys, escaped spellings, a BOM, non-ASCII text, empty and broken bodies), compared on two apps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { registerJsonBodyParser } from '../../src/http/json-body.ts';

async function echoApp(fast: boolean) {
  const app = Fastify();
  if (fast) registerJsonBodyParser(app);
  app.post('/echo', async (req) => ({ body: req.body, proto: Object.getPrototypeOf(req.body ?? {}) === Object.prototype }));
  await app.ready();
  return app;
}

const bodies: [string, string | Buffer][] = [
  ['an object', JSON.stringify({ items: [{ id: 'a', embedding: 'AAAAAAAAgD8=' }], k: 3 })],
  ['an array', '[1, 2, 3]'],
  ['a string', '"text"'],
  ['null', 'null'],
  ['a __proto__ key', '{"a": 1, "__proto__": {"x": 1}}'],
  ['a __proto__ key spelt with escapes', '{"\\u005f_proto__": {"x": 1}}'],
  ['"__proto__" as a value', '{"a": "__proto__"}'],
  ['a constructor.prototype key', '{"constructor": {"prototype": {"x": 1}}}'],
  ['a constructor key without prototype', '{"constructor": {"a": 1}}'],
  ['an escaped constructor key', '{"\\u0063onstructor": {"prototype": {"x": 1}}}'],
  ['an escape in a value', '{"a": "line\\nbreak \\u00e9"}'],
  ['non-ASCII text', JSON.stringify({ id: 'caf\u00e9 \u6f22\u5b57 \u{1f600}' })],
  ['a BOM', Buffer.concat([Buffer.of(0xef, 0xbb, 0xbf), Buffer.from('{"a": 1}')])],
  ['broken JSON', '{"items": ['],
  ['trailing garbage', '{"a": 1} x'],
  ['a NaN literal', '{"a": NaN}'],
  ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ['an empty body', ''],
  ['whitespace only', '   '],
];

test('application/json: the fast path answers every body as the default parser does', async () => {
  const fast = await echoApp(true);
  const plain = await echoApp(false);
  try {
    for (const [name, payload] of bodies) {
      for (const type of ['application/json', 'application/json; charset=utf-8']) {
        const req = { method: 'POST' as const, url: '/echo', headers: { 'content-type': type }, payload };
        const [a, b] = await Promise.all([fast.inject(req), plain.inject(req)]);
        assert.equal(a.statusCode, b.statusCode, `${name} (${type}): ${a.body} vs ${b.body}`);
        assert.deepEqual(JSON.parse(a.body), JSON.parse(b.body), `${name} (${type})`);
      }
    }
    // The cases mean something: the poisoned ones are refused, the others parsed.
    const status = async (payload: string) => (await fast.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload })).statusCode;
    assert.equal(await status('{"__proto__": {"x": 1}}'), 400);
    assert.equal(await status('{"\\u005f_proto__": {"x": 1}}'), 400);
    assert.equal(await status('{"constructor": {"prototype": {"x": 1}}}'), 400);
    assert.equal(await status('{"a": "__proto__"}'), 200);
    assert.equal(await status('{"items": ['), 400);
  } finally {
    await fast.close();
    await plain.close();
  }
});
