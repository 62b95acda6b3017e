/**
 * Sustained load (long version only: SIDX_LONG=1). A real `sidx serve` with a 512-d catalog; max QPS is measured
 * with autocannon, then /v1/retrieve runs at 80% of it for SIDX_LOAD_MINUTES (default 10) in 10 s windows, p99 and
 * the server's RSS sampled per window. Both must stay flat: after a 1-window warm-up, the median p99 of the last
 * third of the windows is at most P99_GROWTH x that of the first third, the largest RSS of the last third at most
 * RSS_GROWTH x the median RSS of the first third; no errors, and the server keeps up with the offered rate. The
 * least-squares slopes (ms/min, MiB/min) are reported. SIDX_LOAD_OUT=FILE writes every window as JSON.
 *
 *   SIDX_LONG=1 node --import tsx --test test/reliability/load.test.ts
 *   knobs: SIDX_LOAD_ITEMS (100000), SIDX_LOAD_MINUTES (10), SIDX_LOAD_CONNECTIONS (16), SIDX_LOAD_MODEL (a bundle dir)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusteredEmbeddings } from '../../src/eval/synthetic.ts';
import { retrieveBodies, upsertAll } from '../../src/bench/http.ts';
import { runLoad, type LoadResult } from '../../src/bench/load.ts';
import { startBenchServer } from '../../src/bench/server.ts';
import { linearFit, median } from '../../src/bench/stats.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { writeTestBundle } from '../helpers/service.ts';

const LONG = process.env.SIDX_LONG === '1';
const ITEMS = Number(process.env.SIDX_LOAD_ITEMS ?? 100_000);
const MINUTES = Number(process.env.SIDX_LOAD_MINUTES ?? 10);
const CONNECTIONS = Number(process.env.SIDX_LOAD_CONNECTIONS ?? 16);
const WINDOW_S = 10;
const P99_GROWTH = 2;
const RSS_GROWTH = 1.25;
const MIN_RATE_SHARE = 0.9;

interface Window extends LoadResult {
  minute: number;
  rssMiB: number;
}

test(`${MINUTES} minutes of /v1/retrieve at 80% of max QPS: p99 and RSS stay flat`, {
  skip: LONG ? false : 'long version only (SIDX_LONG=1)',
  timeout: (MINUTES + 15) * 60_000,
}, async (t) => {
  const tmp = tempDir('sidx-load-');
  try {
    let modelDir = process.env.SIDX_LOAD_MODEL ?? join(repoRoot, 'models', 'default');
    if (!existsSync(join(modelDir, 'model.json'))) {
      modelDir = join(tmp.dir, 'model');
      await writeTestBundle(modelDir, { dim: 512, levels: 3, codebookSize: 256, seed: 7 });
    }
    const dim = (await loadBundle(modelDir)).manifest.inputDim;
    const items = clusteredEmbeddings({ n: ITEMS, dim, seed: 1, clusters: 1024, noise: 0.6 });
    const queries = clusteredEmbeddings({ n: 1000, dim, seed: 2, clusters: 1024, noise: 0.6 });
    const server = await startBenchServer({ dataDir: join(tmp.dir, 'data'), modelDir });
    try {
      await upsertAll(server.url, items, ITEMS, dim, 1000, 2, () => {});
      const bodies = retrieveBodies(queries, 1000, dim, { k: 10 });
      const max = await runLoad({ url: server.url, path: '/v1/retrieve', bodies, connections: CONNECTIONS, durationS: 20 });
      const rate = Math.max(1, Math.floor(0.8 * max.qps));
      t.diagnostic(`${ITEMS} items, model ${modelDir}; max ${max.qps.toFixed(0)} QPS at ${CONNECTIONS} connections (p99 ${max.latencyMs.p99.toFixed(1)} ms); running at ${rate} QPS`);

      const windows: Window[] = [];
      const t0 = performance.now();
      while (performance.now() - t0 < MINUTES * 60_000) {
        const r = await runLoad({ url: server.url, path: '/v1/retrieve', bodies, connections: CONNECTIONS, durationS: WINDOW_S, overallRate: rate });
        const w = { ...r, minute: (performance.now() - t0) / 60_000, rssMiB: server.memory().rssBytes / 2 ** 20 };
        windows.push(w);
        t.diagnostic(`t=${w.minute.toFixed(2)} min: ${w.qps.toFixed(0)} QPS, p99 ${w.latencyMs.p99.toFixed(1)} ms, RSS ${w.rssMiB.toFixed(0)} MiB, errors ${w.errors + w.non2xx}`);
      }
      if (process.env.SIDX_LOAD_OUT) writeFileSync(process.env.SIDX_LOAD_OUT, JSON.stringify({ items: ITEMS, maxQps: max.qps, rate, windows }, null, 2));

      const steady = windows.slice(1);
      assert.ok(steady.length >= 6, `too few windows (${steady.length}) to judge a trend`);
      const third = Math.floor(steady.length / 3);
      const first = steady.slice(0, third);
      const last = steady.slice(-third);
      const minutes = steady.map((w) => w.minute);
      const p99Slope = linearFit(minutes, steady.map((w) => w.latencyMs.p99)).slope;
      const rssSlope = linearFit(minutes, steady.map((w) => w.rssMiB)).slope;
      const p99Growth = median(last.map((w) => w.latencyMs.p99)) / median(first.map((w) => w.latencyMs.p99));
      const rssGrowth = Math.max(...last.map((w) => w.rssMiB)) / median(first.map((w) => w.rssMiB));
      t.diagnostic(`p99 slope ${p99Slope.toFixed(3)} ms/min, growth ${p99Growth.toFixed(3)}x (limit ${P99_GROWTH}x); `
        + `RSS slope ${rssSlope.toFixed(2)} MiB/min, growth ${rssGrowth.toFixed(3)}x (limit ${RSS_GROWTH}x)`);
      assert.equal(windows.reduce((a, w) => a + w.errors + w.non2xx, 0), 0, 'errors or non-2xx answers under load');
      assert.ok(median(steady.map((w) => w.qps)) >= MIN_RATE_SHARE * rate, `the server fell behind the offered ${rate} QPS`);
      assert.ok(p99Growth <= P99_GROWTH, `p99 grew ${p99Growth.toFixed(2)}x`);
      assert.ok(rssGrowth <= RSS_GROWTH, `RSS grew ${rssGrowth.toFixed(2)}x`);
    } finally {
      await server.stop();
    }
  } finally {
    tmp.cleanup();
  }
});
