import assert from 'node:assert/strict';
import { test } from 'node:test';
import { joinedRows } from '../../src/vector/joined-rows.ts';

const D = 3;
const buffer = Float32Array.from({ length: 4 * D }, (_, i) => i);
const row = (i: number, from = buffer) => from.subarray(i * D, (i + 1) * D);

test('rows back to back in one buffer come back as a view of it, no copy', () => {
  const joined = joinedRows([row(1), row(2), row(3)], D);
  assert.deepEqual(Array.from(joined), [3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(joined.buffer, buffer.buffer);
  assert.equal(joined.byteOffset, D * 4);
});

test('any other rows are copied in order: out of order, with a gap, from two buffers, of another length', () => {
  const other = Float32Array.from({ length: 2 * D }, (_, i) => 100 + i);
  const cases: Array<[Float32Array[], number[]]> = [
    [[row(2), row(1)], [6, 7, 8, 3, 4, 5]],
    [[row(0), row(2)], [0, 1, 2, 6, 7, 8]],
    [[row(3), row(0, other)], [9, 10, 11, 100, 101, 102]],
    [[buffer.subarray(0, D - 1), buffer.subarray(D - 1, 2 * D - 2)], [0, 1, 0, 2, 3, 0]], // each row at i x dim
  ];
  for (const [rows, expected] of cases) {
    const joined = joinedRows(rows, D);
    assert.notEqual(joined.buffer, buffer.buffer);
    assert.deepEqual(Array.from(joined), expected);
  }
  assert.equal(joinedRows([], D).length, 0);
});
