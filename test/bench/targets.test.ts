import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CatalogBench, LoadRun, SystemName } from '../../src/bench/report.ts';
import { loadSummary, targetRows } from '../../src/bench/targets.ts';

const lat = (p50: number, p99: number) => ({ n: 1, mean: p50, p50, p95: p99, p99, max: p99 });
const run = (system: SystemName, connections: number, qps: number, round = 1, p99 = 10): LoadRun =>
  ({ system, connections, round, qps, durationS: 1, requests: qps, latencyMs: lat(1, p99), errors: 0, timeouts: 0, non2xx: 0, loadGeneratorCpuMs: 0 });

/** A catalog with only the fields the targets read. */
function catalog(load: LoadRun[]): CatalogBench {
  const upsert = { items: 1000, batch: 1000, concurrency: 2, seconds: 1, itemsPerSecond: 25_000, batchLatencyMs: lat(100, 600) };
  return {
    items: 1000, load, upsert, restartMs: { listening: 1, ready: 1500 },
    retrieve: { recall: 0.9, serverMs: lat(0.5, 2) }, sids: { beamWidth: 32 },
    memory: { afterUpsert: { rssBytes: 3000, peakBytes: 3000 }, rawVectorBytes: 1000 },
    bulkIndex: { items: 1000, batch: 1000, itemsPerSecond: 40_000, wallSeconds: 1 },
  } as unknown as CatalogBench;
}

test('loadSummary averages QPS over rounds and keeps the worst p99', () => {
  const s = loadSummary([run('sidx', 8, 100, 1, 20), run('sidx', 8, 200, 2, 40), run('hnsw', 8, 999)], 'sidx', 8)!;
  assert.deepEqual([s.qps, s.p99, s.runs], [150, 40, 2]);
  assert.equal(loadSummary([], 'sidx', 8), undefined);
  assert.equal(s.cpu, undefined, 'no CPU figure where the runs measured none');
  const cpu = (server: number, generator: number, busy: number) => ({ serverMsPerRequest: server, loadGeneratorMsPerRequest: generator, machineBusy: busy });
  const measured = loadSummary([{ ...run('bare', 8, 100), cpu: cpu(0.02, 0.03, 0.9) }, { ...run('bare', 8, 100, 2), cpu: cpu(0.04, 0.05, 0.7) }], 'bare', 8)!;
  assert.deepEqual(measured.cpu, cpu(0.03, 0.04, 0.8));
  const partly = loadSummary([{ ...run('bare', 8, 100), cpu: cpu(0.02, 0.03, 0.9) }, run('bare', 8, 100, 2)], 'bare', 8)!;
  assert.equal(partly.cpu, undefined, 'a mean over some rounds only is not given');
});

test('targetRows: ratios against the peers at 8 and 32 connections and the issue\'s bounds, meets or misses', () => {
  const rows = targetRows(catalog([
    run('sidx', 1, 50), run('sidx', 8, 100), run('sidx', 32, 120, 1, 80),
    run('hnsw', 8, 50), run('hnsw', 32, 240), run('bare', 8, 200), run('bare', 32, 400),
    run('sidx-sids', 8, 150), run('sidx-sids', 32, 200),
  ]), 2, { sidx: 0.95 });
  const get = (prefix: string) => {
    const r = rows.find((t) => t.target.startsWith(prefix));
    assert.ok(r, `a row starting ${prefix}`);
    return r;
  };
  const hnsw8 = get('/v1/retrieve QPS / HNSW peer QPS, 8 ');
  assert.deepEqual([hnsw8.ratio, hnsw8.meets], [2, true]);
  const hnsw32 = get('/v1/retrieve QPS / HNSW peer QPS, 32 ');
  assert.deepEqual([hnsw32.ratio, hnsw32.meets], [0.5, false]);
  assert.deepEqual([get('/v1/retrieve QPS / bare route QPS, 8 ').ratio, get('/v1/retrieve QPS / bare route QPS, 8 ').meets], [0.5, true]);
  assert.equal(get('/v1/retrieve QPS / bare route QPS, 32 ').meets, false); // 0.3 < 0.4
  assert.equal(get('sids (beam of 32, no rerank) QPS / bare route QPS, 8 ').meets, true); // 0.75
  assert.equal(get('sids (beam of 32, no rerank) QPS / bare route QPS, 32 ').meets, false); // 0.5
  assert.deepEqual([get('server-side p50').ratio, get('server-side p50').meets], [0.5, true]);
  assert.equal(get('p99 at 32 connections').meets, false); // 80 ms > 50 ms
  assert.equal(get('recall@10 / recall@10 of the baseline').meets, false);
  assert.deepEqual([get('QPS at 8 connections / at 1').ratio, get('QPS at 8 connections / at 1').meets], [2, true]);
  assert.equal(get('ingest items/s').meets, true);
  assert.equal(get('slowest ingest batch').meets, false); // 600 ms > 500 ms
  assert.equal(get('`sidx index` items/s').meets, false); // 40,000 < 50,000
  assert.equal(get('server RSS').meets, false); // 3x > 1.5x
  assert.equal(get('restart to ready').meets, true);
});

test('targetRows: pq, the compressed storage, is held to 0.5x raw, sq8 (the default) to 1.5x; both to 0.01 of recall against the same catalog as f32', () => {
  const c = { ...catalog([run('sidx', 8, 100)]), k: 10, storage: 'pq', asF32: { recall: 0.905, serverMs: lat(1, 2) } } as CatalogBench;
  c.memory = { ...c.memory, afterUpsert: { ...c.memory.afterUpsert, rssBytes: 600 } };
  const rows = targetRows(c, 2);
  const rss = rows.find((t) => t.target.startsWith('server RSS'))!;
  assert.match(rss.target, /\/ 0\.5 \(vectors\.storage pq\)/);
  assert.deepEqual([rss.ratio, rss.meets], [1.2, false]); // 0.6x > 0.5x
  const loss = rows.find((t) => t.target.startsWith('recall@10 lost against'))!;
  assert.ok(Math.abs(loss.ratio - 0.5) < 1e-9 && loss.meets, JSON.stringify(loss)); // 0.005 of 0.01
  assert.equal(targetRows(catalog([run('sidx', 8, 100)]), 2).some((t) => t.target.startsWith('recall@10 lost')), false, 'f32: no such row');
  const sq8 = targetRows({ ...c, storage: 'sq8' }, 2).find((t) => t.target.startsWith('server RSS'))!;
  assert.match(sq8.target, /\/ 1\.5 \(vectors\.storage sq8\)/, 'sq8, the default storage, is held to the default\'s bound');
  assert.ok(Math.abs(sq8.ratio - 0.4) < 1e-9 && sq8.meets, JSON.stringify(sq8)); // 0.6x <= 1.5x
});
