/** firstNonFinite (src/finite.ts): the first NaN or +-Infinity of a range, against a per-element reference. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstNonFinite } from '../src/finite.ts';

const reference = (data: Float32Array, start: number, end: number) => {
  for (let i = start; i < end; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
};

test('firstNonFinite finds the first NaN or +-Infinity of a range, whatever its length and place', () => {
  const finite = [0, -0, 1, -1, 3.4e38, -3.4e38, 1e-45, -1e-45];
  for (let length = 0; length <= 13; length++) {
    const data = Float32Array.from({ length }, (_v, i) => finite[i % finite.length]!);
    assert.equal(firstNonFinite(data), -1, `all finite, length ${length}`);
    for (let at = 0; at < length; at++) {
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        const copy = data.slice();
        copy[at] = bad;
        if (at + 2 < length) copy[at + 2] = Number.NaN; // a later one does not hide the first
        assert.equal(firstNonFinite(copy), at, `${bad} at ${at} of ${length}`);
        for (let start = 0; start <= length; start++) {
          for (let end = start; end <= length; end++) assert.equal(firstNonFinite(copy, start, end), reference(copy, start, end), `[${start}, ${end})`);
        }
      }
    }
  }
});

test('firstNonFinite over ranges longer than its chunks: the first bad value, across and at chunk edges', () => {
  const chunk = 1 << 14;
  const data = Float32Array.from({ length: 3 * chunk + 5 }, (_v, i) => Math.sin(i));
  assert.equal(firstNonFinite(data), -1);
  for (const at of [0, chunk - 1, chunk, 2 * chunk + 7, 3 * chunk + 4]) {
    const copy = data.slice();
    copy[at] = Number.POSITIVE_INFINITY;
    copy[Math.min(copy.length - 1, at + chunk)] = Number.NaN; // a later one in the next chunk does not hide it
    assert.equal(firstNonFinite(copy), at, `at ${at}`);
    assert.equal(firstNonFinite(copy, at + 1), reference(copy, at + 1, copy.length), `after ${at}`);
    assert.equal(firstNonFinite(copy, 3, at), -1, `before ${at}`);
  }
});
