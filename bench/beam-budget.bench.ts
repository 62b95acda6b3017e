/**
 * The beam's two knobs on a served catalog: how much of the exact top 10 each (beamWidth, maxCandidates) pair finds, and
 * what it costs under load. Every pair of --widths x --candidates (plus the server's defaults, `{}`) answers the same
 * queries one at a time (recall@10 against exact FAISS, mean candidates, server p50); the pairs of --load are then
 * loaded at each of --connections for --duration seconds, in --rounds rounds of alternating order (QPS, client p99,
 * server CPU per request). The catalog of `sidx bench`'s synthetic items is kept in --data-dir (bench/served-catalog.ts).
 *
 *   SIDX_SHARED_DATA=../shared/data node --import tsx bench/beam-budget.bench.ts [--items 100000] [--queries 500]
 *        [--model models/default] [--data-dir /tmp/sidx-serve-profile] [--widths 16,32,64,128]
 *        [--candidates 1000,1250,1500,2000] [--load default,128x1000,32x1250] [--connections 8,32] [--duration 6] [--rounds 2]
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { exactBaseline } from '../src/bench/baselines.ts';
import { retrieveBodies, retrievePass } from '../src/bench/http.ts';
import { runLoad } from '../src/bench/load.ts';
import { cpuMeter } from '../src/bench/server.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { benchArgs, envPairs, markdownTable } from './lib.ts';
import { ensureCatalog, startServe } from './served-catalog.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, queries: { type: 'string', default: '500' },
  model: { type: 'string', default: 'models/default' }, 'data-dir': { type: 'string', default: '/tmp/sidx-serve-profile' },
  widths: { type: 'string', default: '16,32,64,128' }, candidates: { type: 'string', default: '1000,1250,1500,2000' },
  load: { type: 'string', default: 'default,128x1000,32x1250' }, connections: { type: 'string', default: '8,32' },
  duration: { type: 'string', default: '6' }, rounds: { type: 'string', default: '2' }, env: { type: 'string', default: '' },
});
const N = Number(args.items);
const Q = Number(args.queries);
const DIM = 512;
const K = 10;
const numbers = (flag: string) => String(flag).split(',').filter(Boolean).map(Number);

/** `default` (the server's own), or `WxC`: beamWidth W, maxCandidates C. */
function bodyOptions(spec: string): Record<string, number> {
  if (spec === 'default') return {};
  const m = /^(\d+)x(\d+)$/.exec(spec);
  if (!m) throw new Error(`--load: "${spec}" is neither "default" nor WIDTHxCANDIDATES`);
  return { beamWidth: Number(m[1]), maxCandidates: Number(m[2]) };
}
const label = (o: Record<string, number>) => (o.beamWidth === undefined ? 'server defaults' : `${o.beamWidth} x ${o.maxCandidates}`);

const { items, queries } = await syntheticCatalog({ n: N, q: Q, dim: DIM, seed: 1 });
const dataDir = resolve(String(args['data-dir']));
mkdirSync(dataDir, { recursive: true });
const catalog = { items, n: N, dim: DIM, dataDir, model: String(args.model), env: { SIDX__SERVER__LOG_LEVEL: 'info', ...envPairs(String(args.env)) } };
await ensureCatalog(catalog);
const { metric } = (await loadBundle(resolve(String(args.model)))).manifest;
const exact = await exactBaseline({ items, n: N, dim: DIM, metric, queries, q: Q, k: K, budgetMs: 100 });

const server = await startServe(catalog);
try {
  const grid = [{}, ...numbers(args.widths).flatMap((w) => numbers(args.candidates).map((c) => ({ beamWidth: w, maxCandidates: c })))];
  const rows: Array<Array<string | number>> = [];
  for (const o of grid) {
    const pass = await retrievePass(server.url, retrieveBodies(queries, Q, DIM, { k: K, ...o }), exact.truth, K, N);
    rows.push([label(o), pass.recall.toFixed(4), Math.round(pass.meanCandidates), pass.serverMs.p50.toFixed(3)]);
  }
  console.log(`${N.toLocaleString('en-US')} items, ${args.model}, ${Q} queries, one at a time\n`);
  console.log(markdownTable(['beamWidth x maxCandidates', `recall@${K}`, 'candidates', 'server p50 ms'], rows));

  const loads = String(args.load).split(',').filter(Boolean).map(bodyOptions);
  const duration = Number(args.duration);
  if (loads.length > 0 && duration > 0) {
    const runs = new Map<string, Array<{ qps: number; p99: number; cpuMs: number }>>();
    for (let round = 1; round <= Number(args.rounds); round++) {
      for (const o of round % 2 === 1 ? loads : [...loads].reverse()) {
        const bodies = retrieveBodies(queries, Q, DIM, { k: K, ...o });
        for (const connections of numbers(args.connections)) {
          await runLoad({ url: server.url, path: '/v1/retrieve', bodies, connections, durationS: 1 });
          const meter = cpuMeter(server.pid);
          const load = await runLoad({ url: server.url, path: '/v1/retrieve', bodies, connections, durationS: duration });
          const cpuMs = (1000 * meter().processSeconds) / Math.max(1, load.requests);
          const key = `${label(o)} @${connections}`;
          runs.set(key, [...(runs.get(key) ?? []), { qps: load.qps, p99: load.latencyMs.p99, cpuMs }]);
        }
      }
    }
    const each = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join(' / ');
    console.log(`\n${duration} s per run, ${args.rounds} round(s), alternating order\n`);
    console.log(markdownTable(['beamWidth x maxCandidates @ connections', 'QPS per round', 'mean QPS', 'client p99 ms', 'server CPU ms per request'],
      [...runs].sort(([a], [b]) => a.localeCompare(b)).map(([name, r]) => [name, each(r.map((x) => x.qps), 0),
        Math.round(r.reduce((s, x) => s + x.qps, 0) / r.length), each(r.map((x) => x.p99), 1), each(r.map((x) => x.cpuMs), 3)])));
  }
} finally {
  await server.stop();
}
