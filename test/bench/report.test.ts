import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linearFit, latencySummary, percentile } from '../../src/bench/stats.ts';
import { markers, writeMarkdownSection } from '../../src/bench/report.ts';
import { recallAtK } from '../../src/bench/baselines.ts';
import { f as formatFigure } from '../../src/bench/render.ts';
import { tempDir } from '../helpers/paths.ts';

test('percentiles are nearest-rank; the latency summary names p50/p95/p99', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(Float64Array.from(xs), 50), 50);
  assert.equal(percentile(Float64Array.from(xs), 99), 99);
  assert.ok(Number.isNaN(percentile([], 50)));
  const s = latencySummary([...xs].reverse());
  assert.deepEqual([s.n, s.p50, s.p95, s.p99, s.max, s.mean], [100, 50, 95, 99, 100, 50.5]);
});

test('linearFit recovers a line; too few points give NaN', () => {
  const fit = linearFit([0, 1, 2, 3], [1, 3, 5, 7]);
  assert.equal(fit.slope, 2);
  assert.equal(fit.intercept, 1);
  assert.ok(Number.isNaN(linearFit([1], [1]).slope));
});

test('recall@k counts the exact top-k found, in any order', () => {
  const truth = BigInt64Array.of(1n, 2n, 3n, 4n);
  assert.equal(recallAtK(BigInt64Array.of(2n, 1n, 9n, -1n), truth, 2, 2), 0.5);
});

test('the Markdown section is replaced between its own markers and appended otherwise', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'benchmarks.md');
    writeFileSync(file, '# Benchmarks\n\nprose\n');
    writeMarkdownSection(file, 'sizes=100', 'first');
    writeMarkdownSection(file, 'sizes=200', 'other');
    writeMarkdownSection(file, 'sizes=100', 'second');
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith('# Benchmarks\n\nprose\n'));
    assert.ok(text.includes(`${markers('sizes=100').begin}\nsecond\n${markers('sizes=100').end}`));
    assert.ok(text.includes('other'));
    assert.ok(!text.includes('first'));
  } finally {
    cleanup();
  }
});

test('report figures: significant digits below 100, whole numbers from there, never an exponent', () => {
  assert.equal(formatFigure(0.5), '0.500');
  assert.equal(formatFigure(12.345, 2), '12');
  assert.equal(formatFigure(99.6, 2), '100', 'rounding up to 100 at 2 digits');
  assert.equal(formatFigure(99.96), '100');
  assert.equal(formatFigure(12_345.6), '12,346');
  assert.equal(formatFigure(Number.NaN), 'n/a');
  assert.equal(formatFigure(undefined), 'n/a');
});
