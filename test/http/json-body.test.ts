/**
 * The JSON body parser's fast path answers exactly as Fastify's default parser: the same bodies and the same errors
 * (poisoned keys, escaped spellings, a BOM, non-ASCII text, empty and broken bodies), compared on two apps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { registerJsonBodyParser } from '../../src/http/json-body.ts';
import { parseItemBatchBody } from '../../src/http/item-batch-body.ts';

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
  // Upsert batches, which the fast path parses itself (item-batch-body.ts), and near misses it leaves to JSON.parse.
  ['an upsert batch', JSON.stringify({ items: [{ id: 'a', embedding: 'AAAAAAAAgD8=' }, { id: 'b', embedding: 'AACAPwAAAAA=' }] })],
  ['an upsert batch with whitespace everywhere', ' {\n "items" : [ { "id" : "a" ,\t"embedding" : "AAAA" } ,\r\n{"id":"b","embedding":"AAAA"} ] }\n'],
  ['an upsert batch, embedding before id', '{"items":[{"embedding":"AAAA","id":"x"},{"id":"y","embedding":"AAAA"}]}'],
  ['an empty upsert batch', '{"items":[]}'],
  ['an id holding JSON punctuation', '{"items":[{"id":"a b/c:d,e}f]g{[","embedding":"AAAA"}]}'],
  ['an empty id and embedding', '{"items":[{"id":"","embedding":""}]}'],
  ['a number-array embedding', '{"items":[{"id":"a","embedding":[1, 2.5, -3e-2]}]}'],
  ['an extra item key', '{"items":[{"id":"a","embedding":"AAAA","x":1}]}'],
  ['a repeated item key', '{"items":[{"id":"a","id":"b","embedding":"AAAA"}]}'],
  ['an id that is a number', '{"items":[{"id":7,"embedding":"AAAA"}]}'],
  ['items that is an object', '{"items":{"id":"a","embedding":"AAAA"}}'],
  ['a raw tab in an id', '{"items":[{"id":"a\tb","embedding":"AAAA"}]}'],
  ['a trailing comma in a batch', '{"items":[{"id":"a","embedding":"AAAA"},]}'],
  ['an unterminated batch', '{"items":[{"id":"a","embedding":"AAAA"}'],
  ['an unterminated id', '{"items":[{"id":"a'],
  ['garbage after a batch', '{"items":[]} x'],
  ['a non-ASCII id in a batch', JSON.stringify({ items: [{ id: 'caf\u00e9', embedding: 'AAAA' }] })],
  ['an escaped quote in an id', '{"items":[{"id":"a\\"b","embedding":"AAAA"}]}'],
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
        assert.equal(a.body, b.body, `${name} (${type})`);
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

test('an upsert batch takes the fast path, with the keys in the order sent; other shapes do not', () => {
  const parse = (text: string) => parseItemBatchBody(Buffer.from(text));
  const batch = parse(' { "items" : [ {"embedding":"AAAA","id":"x"} , {"id":"y","embedding":"BBBB"} ] } ');
  assert.equal(JSON.stringify(batch), '{"items":[{"embedding":"AAAA","id":"x"},{"id":"y","embedding":"BBBB"}]}');
  assert.deepEqual(parse('{"items":[]}'), { items: [] });
  for (const other of ['{"items":[{"id":"a","embedding":[1]}]}', '{"items":[],"k":1}', '{"items":[{"id":"a","embedding":"A","x":1}]}',
    '{"items":[{"id":"a\tb","embedding":"A"}]}', '{"items":[{"id":"a","embedding":"A"},]}', '{"items":[]} x', '{"embedding":"A"}', '{"k":3}', '{}', '{"items"', '', '[]']) {
    assert.equal(parse(other), undefined, other);
  }
});
