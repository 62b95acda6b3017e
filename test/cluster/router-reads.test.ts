import { test } from 'node:test';
import assert from 'node:assert/strict';
import { payloadParts } from '../../src/cluster/router-reads.ts';

test('a batch is cut into consecutive parts within the payload budget, each with one query at least', () => {
  const messages = ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40), 'd'.repeat(200), 'e'.repeat(10), 'é'.repeat(30)];
  const parts = payloadParts(messages, 100);
  assert.deepEqual(parts, [[0, 2], [2, 3], [3, 4], [4, 6]]);
  for (const [from, to] of parts) {
    const bytes = messages.slice(from, to).reduce((n, m) => n + Buffer.byteLength(m) + 1, 0);
    assert.ok(to - from === 1 || bytes <= 100, `part ${from}..${to}: ${bytes} bytes`);
  }
  assert.deepEqual(payloadParts(messages, 10_000), [[0, 6]]);
  assert.deepEqual(payloadParts([], 100), []);
});
