/**
 * FastHistogram against prom-client's Histogram: the same observations give the same exposition text and JSON,
 * series and buckets in the same order, values on a bound and beyond the last one included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../src/service/fast-histogram.ts';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.01, 0.1, 1];

function pair() {
  const fastRegistry = new Registry();
  const slowRegistry = new Registry();
  const config = { name: 'sidx_test_seconds', help: 'A test histogram', labelNames: ['route', 'phase'] as const, buckets: BUCKETS };
  const fast = new FastHistogram({ ...config, registers: [fastRegistry] });
  const slow = new Histogram({ ...config, labelNames: [...config.labelNames], registers: [slowRegistry] });
  return { fast, slow, fastRegistry, slowRegistry };
}

test('FastHistogram exposes what a prom-client Histogram exposes for the same observations', async () => {
  const { fast, slow, fastRegistry, slowRegistry } = pair();
  assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics(), 'no series yet');
  const values = [0, 0.0001, 0.0005, 0.0007, 0.001, 0.002, 0.0025, 0.05, 1, 1.5, 30, -0.001];
  const labels = [
    { route: '/v1/retrieve', phase: 'rerank' }, { route: '/v1/retrieve', phase: 'beam' },
    { route: '/v1/encode', phase: 'parse' }, { route: 'a "quoted"\\route\n', phase: 'x' },
  ];
  values.forEach((v, i) => {
    for (let j = 0; j <= i % labels.length; j++) {
      fast.observe(labels[j]!, v);
      slow.observe(labels[j]!, v);
    }
  });
  const text = await fastRegistry.metrics();
  assert.equal(text, await slowRegistry.metrics());
  assert.match(text, /sidx_test_seconds_bucket\{le="0.0005",route="\/v1\/retrieve",phase="rerank"\} 4/);
  assert.match(text, /sidx_test_seconds_bucket\{le="\+Inf",route="\/v1\/retrieve",phase="rerank"\} 12/);
  assert.deepEqual(JSON.parse(JSON.stringify(await fastRegistry.getMetricsAsJSON())), JSON.parse(JSON.stringify(await slowRegistry.getMetricsAsJSON())));
  fast.reset();
  slow.reset();
  assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics());
});

test('FastHistogram refuses non-finite values, a missing label and unordered buckets', () => {
  const { fast } = pair();
  assert.throws(() => fast.observe({ route: 'r', phase: 'p' }, Number.NaN), /not a valid number/);
  assert.throws(() => fast.observe({ route: 'r' } as never, 1), /label "phase" must be a string/);
  assert.throws(() => new FastHistogram({ name: 'x', help: 'x', labelNames: ['a'], buckets: [1, 1], registers: [] }), /buckets must increase/);
});

test('a series kept by its caller observes into the same series, and still does after a reset', async () => {
  const { fast, slow, fastRegistry, slowRegistry } = pair();
  const kept = fast.series({ route: '/v1/retrieve', phase: 'rerank' });
  assert.equal(fast.series({ route: '/v1/retrieve', phase: 'rerank' }), kept, 'one series per label values');
  for (const v of [0.0004, 0.002, 3]) {
    kept.observe(v);
    slow.observe({ route: '/v1/retrieve', phase: 'rerank' }, v);
  }
  fast.observe({ route: '/v1/retrieve', phase: 'rerank' }, 0.05);
  slow.observe({ route: '/v1/retrieve', phase: 'rerank' }, 0.05);
  assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics());
  assert.throws(() => kept.observe(Number.POSITIVE_INFINITY), /not a valid number/);
  fast.reset();
  slow.reset();
  assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics(), 'a reset series is not exposed');
  kept.observe(0.001);
  slow.observe({ route: '/v1/retrieve', phase: 'rerank' }, 0.001);
  assert.equal(await fastRegistry.metrics(), await slowRegistry.metrics(), 'the kept series counts again');
});
