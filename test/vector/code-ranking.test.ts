/**
 * belowExact (src/vector/code-ranking.ts) keeps the exactly re-scored candidates above every code-score estimate,
 * the estimates' own order unchanged; it reuses one scratch array of marks, so a call must not see an earlier one's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { belowExact } from '../../src/vector/code-ranking.ts';
import { rng } from '../helpers/random.ts';

function order(scores: Float32Array, sign: 1 | -1): number[] {
  return Array.from(scores.keys()).filter((i) => Number.isFinite(scores[i]!)).sort((a, b) => sign * (scores[b]! - scores[a]!) || a - b);
}

test('belowExact: exact positions first, estimates after in their own order, call after call', () => {
  const r = rng(4);
  for (let round = 0; round < 50; round++) {
    const n = 5 + Math.floor(r() * 3000); // alternately larger and smaller than the scratch so far
    const sign: 1 | -1 = round % 2 === 0 ? 1 : -1;
    const scores = Float32Array.from({ length: n }, () => (r() < 0.05 ? NaN : r() * 10 - 5));
    const exactCount = 1 + Math.floor(r() * Math.min(20, n - 1));
    const exact = Int32Array.from(new Set(Array.from({ length: exactCount }, () => Math.floor(r() * n)))).filter((p) => Number.isFinite(scores[p]!)).sort();
    const estimatesBefore = order(scores, sign).filter((i) => !exact.includes(i));
    belowExact(scores, exact, sign);
    const after = order(scores, sign);
    assert.deepEqual(new Set(after.slice(0, exact.length)), new Set(exact), `round ${round}: the exact ones lead`);
    // The estimates keep their order (a shift by the same gap may round two close ones to a tie, never swap them).
    for (let j = 1; j < estimatesBefore.length; j++) {
      assert.ok(sign * scores[estimatesBefore[j - 1]!]! >= sign * scores[estimatesBefore[j]!]!, `round ${round}: estimates ${j - 1}, ${j} swapped`);
    }
  }
});
