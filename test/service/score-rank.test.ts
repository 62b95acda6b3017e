import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rankByScore } from '../../src/service/score-rank.ts';
import { seededUniform } from '../../src/random.ts';

/** The reference order: a full stable sort of the finite signed scores, higher first, ties by position. */
function reference(raw: Float32Array, sign: 1 | -1): number[] {
  const signed = Float32Array.from(raw, (s) => sign * s);
  return [...signed.keys()].filter((i) => Number.isFinite(signed[i]!)).sort((a, b) => signed[b]! - signed[a]! || a - b);
}


test('rankByScore yields the full stable order, with ties, non-finite scores and any head size', () => {
  const rand = seededUniform(7);
  for (let round = 0; round < 200; round++) {
    const n = Math.floor(rand() * 60);
    // Few distinct values so that ties are common; some NaN and infinities.
    const raw = Float32Array.from({ length: n }, () => {
      const r = rand();
      if (r < 0.05) return Number.NaN;
      if (r < 0.08) return Number.POSITIVE_INFINITY;
      if (r < 0.1) return Number.NEGATIVE_INFINITY;
      return Math.floor(rand() * 8) - 4;
    });
    const sign = rand() < 0.5 ? 1 : -1;
    const head = Math.floor(rand() * (n + 3));
    const want = reference(raw, sign);
    assert.deepEqual([...rankByScore(raw.slice(), sign, head)], want, `n ${n} head ${head} sign ${sign}`);
  }
});

test('rankByScore: reading only the head gives its prefix of the order; the scores come back signed', () => {
  const raw = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
  const want = reference(raw, -1);
  const scores = raw.slice();
  const first: number[] = [];
  for (const i of rankByScore(scores, -1, 10)) {
    first.push(i);
    if (first.length === 10) break;
  }
  assert.deepEqual(first, want.slice(0, 10));
  assert.deepEqual(scores, Float32Array.from(raw, (s) => -s));
  // Past the head: the rest follows in order (a caller that skips deleted items reads on).
  assert.deepEqual([...rankByScore(raw.slice(), -1, 10)].slice(0, 25), want.slice(0, 25));
});
