import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { mergePhases, parsePhases, phaseDelta } from '../../src/bench/phases.ts';

/** A real prom-client histogram shaped like the server's, rendered in the text exposition format. */
function histogram() {
  const registry = new Registry();
  const h = new Histogram({ name: 'sidx_request_phase_seconds', help: 'phases', labelNames: ['route', 'phase'], registers: [registry] });
  return { registry, h };
}

test('parsePhases reads the retrieve route\'s sums and counts by phase and ignores other routes', async () => {
  const { registry, h } = histogram();
  h.observe({ route: '/v1/retrieve', phase: 'encode' }, 0.002);
  h.observe({ route: '/v1/retrieve', phase: 'encode' }, 0.004);
  h.observe({ route: '/v1/retrieve', phase: 'parse' }, 0.001);
  h.observe({ route: '/v1/items', phase: 'encode' }, 9);
  const p = parsePhases(await registry.metrics());
  assert.deepEqual([...p.keys()].sort(), ['encode', 'parse']);
  assert.equal(p.get('encode')!.count, 2);
  assert.ok(Math.abs(p.get('encode')!.sum - 0.006) < 1e-12);
  assert.equal(parsePhases('# no such metric\nup 1\n').size, 0);
});

test('phaseDelta gives mean ms per phase between two scrapes; nothing observed gives undefined', async () => {
  const { registry, h } = histogram();
  h.observe({ route: '/v1/retrieve', phase: 'beam' }, 1);
  const before = parsePhases(await registry.metrics());
  assert.equal(phaseDelta(before, before), undefined);
  h.observe({ route: '/v1/retrieve', phase: 'beam' }, 0.003);
  h.observe({ route: '/v1/retrieve', phase: 'beam' }, 0.005);
  h.observe({ route: '/v1/retrieve', phase: 'respond' }, 0.0005);
  const d = phaseDelta(before, parsePhases(await registry.metrics()))!;
  assert.equal(d.source, 'metrics');
  assert.equal(d.requests, 2);
  assert.ok(Math.abs(d.meanMs.beam! - 4) < 1e-9);
  assert.ok(Math.abs(d.meanMs.respond! - 0.5) < 1e-9);
  const m = mergePhases(d, { source: 'metrics', requests: 2, meanMs: { beam: 2 } })!;
  assert.equal(m.requests, 4);
  assert.ok(Math.abs(m.meanMs.beam! - 3) < 1e-9);
});
