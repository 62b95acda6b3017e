import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exactBaseline, mergeTopK } from '../../src/bench/baselines.ts';
import { randomMatrix } from '../helpers/random.ts';

test('mergeTopK keeps the best k of two lists per query, by the metric, missing labels last', () => {
  const higher = (a: number, b: number) => a > b;
  const a = { labels: BigInt64Array.of(1n, 2n, 3n, 10n, -1n, -1n), scores: Float32Array.of(0.9, 0.5, 0.1, 0.4, Number.NaN, Number.NaN) };
  const b = { labels: BigInt64Array.of(7n, 8n, -1n, 11n, 12n, 13n), scores: Float32Array.of(0.8, 0.5, Number.NaN, 0.6, 0.3, 0.2) };
  const m = mergeTopK(a.labels, a.scores, b.labels, b.scores, 2, 3, higher);
  assert.deepEqual(Array.from(m.labels), [1n, 7n, 2n, 11n, 10n, 12n], 'ties go to the first list');
  const lower = mergeTopK(BigInt64Array.of(1n, 2n), Float32Array.of(0.1, 0.5), BigInt64Array.of(3n, 4n), Float32Array.of(0.2, 0.3), 1, 2, (x, y) => x < y);
  assert.deepEqual(Array.from(lower.labels), [1n, 3n]);
});

test('exactBaseline finds the same top k in chunks as in one flat index', async () => {
  const dim = 16;
  const n = 2_500;
  const items = randomMatrix(n, dim, 3);
  const queries = randomMatrix(20, dim, 4);
  for (const metric of ['ip', 'l2'] as const) {
    const input = { items, n, dim, metric, queries, q: 20, k: 7, budgetMs: 1 };
    const whole = await exactBaseline(input);
    const chunked = await exactBaseline(input, 1_000);
    assert.equal(chunked.result.chunks, 3);
    assert.equal(whole.result.chunks, 1);
    assert.deepEqual(Array.from(chunked.truth), Array.from(whole.truth), metric);
  }
});
