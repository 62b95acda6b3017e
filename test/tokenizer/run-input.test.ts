import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunInput, type Chunk } from '../../src/tokenizer/worker-protocol.ts';

const chunk = (data: Float32Array): Chunk => ({ id: 1, data, n: data.length / 4, resolve: () => {}, reject: () => {} });

test('a run\'s rows are copied, in order, into one shared buffer reused by the next run; the callers\' arrays stay as they were', () => {
  const input = new RunInput();
  const a = Float32Array.from({ length: 8 }, (_, i) => i);
  const b = Float32Array.from({ length: 4 }, (_, i) => 100 + i);
  const first = input.rows([chunk(a), chunk(b)]);
  assert.ok(first.buffer instanceof SharedArrayBuffer);
  assert.deepEqual(Array.from(first), [...a, ...b]);
  const second = input.rows([chunk(b)]);
  assert.equal(second.buffer, first.buffer, 'a run that fits reuses the buffer');
  assert.deepEqual(Array.from(second), Array.from(b));
  assert.deepEqual(Array.from(a), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(a.buffer.byteLength, 32, 'not detached');
});

test('the shared buffer grows for a larger run, and a run over 16 MiB gets a buffer of its own to transfer', () => {
  const input = new RunInput();
  const small = input.rows([chunk(new Float32Array(4).fill(1))]);
  const big = new Float32Array(1 << 20).fill(2); // 4 MiB
  const grown = input.rows([chunk(big)]);
  assert.ok(grown.buffer instanceof SharedArrayBuffer);
  assert.notEqual(grown.buffer, small.buffer);
  assert.ok(grown.buffer.byteLength >= big.byteLength);
  assert.equal(grown[grown.length - 1], 2);
  const huge = new Float32Array((16 << 20) / 4 + 4).fill(3);
  const own = input.rows([chunk(huge)]);
  assert.ok(own.buffer instanceof ArrayBuffer && !(own.buffer instanceof SharedArrayBuffer));
  assert.equal(own.length, huge.length);
  assert.equal(own[own.length - 1], 3);
  assert.equal(input.rows([chunk(big)]).buffer, grown.buffer, 'the shared buffer is kept');
});
