/**
 * Cluster overhead (issue 13): the same synthetic catalog and the same /v1/retrieve bodies through a single node,
 * a router over 1 shard and a router over 2 shards (one replica each; each cluster on its own local nats-server
 * with JetStream), every node a `sidx serve` child. Ingest items/s through the write log (the router waits until
 * applied) vs directly; QPS and latency under autocannon at 1 and 8 connections, and at 8 in the sids mode (beams
 * of 32 generated SIDs, no rerank: they fan out to every shard too), and the same two at 8 connections through POST
 * /v1/retrieve/batch, `--batch` queries per request (queries/s); recall@10 of each against exact.
 *
 *   node --import tsx bench/cluster.bench.ts [--items 100000] [--queries 200] [--duration 5] [--model models/default] [--batch 32]
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exactBaseline } from '../src/bench/baselines.ts';
import { batchBodies, retrieveBodies, retrievePass, sidsBodies, upsertAll } from '../src/bench/http.ts';
import { runLoad } from '../src/bench/load.ts';
import { startNatsServer } from '../src/bench/nats-server.ts';
import { startBenchServer, startChildServer, SIDX_SERVE, type BenchServer } from '../src/bench/server.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { benchArgs } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, queries: { type: 'string', default: '200' }, duration: { type: 'string', default: '5' },
  model: { type: 'string', default: 'models/default' }, batch: { type: 'string', default: '32' },
});
const BATCH = Number(args.batch);
const N = Number(args.items);
const Q = Number(args.queries);
const modelDir = resolve(args.model as string);
const bundle = await loadBundle(modelDir);
const dim = bundle.manifest.inputDim;
const root = mkdtempSync(join(tmpdir(), 'sidx-cluster-bench-'));
const procs: ChildProcess[] = [];
const log = (m: string) => process.stderr.write(`[cluster bench] ${m}\n`);

async function nats(name: string): Promise<string> {
  const server = await startNatsServer(join(root, name));
  procs.push(server.child);
  return server.url;
}

function node(role: string, url: string, shards: number, shard = 0): Promise<BenchServer> {
  const args = [...SIDX_SERVE, '--port', '0', '--host', '127.0.0.1', '--model', modelDir, '--workers', '1', '--cluster', url, '--role', role, '--shard', `${shard}/${shards}`];
  if (role === 'shard') args.push('--data-dir', join(root, `${url.split(':').pop()}-shard${shard}`), '--replica', 'a');
  return startChildServer(`sidx ${role}`, args, { SIDX__CLUSTER__WAIT_APPLIED: 'true', SIDX__CLUSTER__REQUEST_TIMEOUT_MS: '10000', SIDX__LIMITS__MAX_BATCH: '1000' });
}

try {
  const { items, queries, data } = await syntheticCatalog({ n: N, q: Q, dim, seed: 1 });
  log(data);
  const exact = await exactBaseline({ items, n: N, dim, metric: bundle.manifest.metric, queries, q: Q, k: 10, budgetMs: 1000 });
  const bodies = retrieveBodies(queries, Q, dim, { k: 10 });
  const rows: string[][] = [];
  let sids: string[] | undefined;
  for (const setup of ['single node', 'router + 1 shard', 'router + 2 shards']) {
    log(setup);
    const servers: BenchServer[] = [];
    let front: BenchServer;
    if (setup === 'single node') {
      front = await startBenchServer({ dataDir: join(root, 'single'), modelDir, workers: 1, env: { SIDX__LIMITS__MAX_BATCH: '1000' } });
    } else {
      const shards = setup.endsWith('2 shards') ? 2 : 1;
      const url = await nats(`js-${shards}`);
      for (let s = 0; s < shards; s++) servers.push(await node('shard', url, shards, s));
      front = await node('router', url, shards);
    }
    servers.push(front);
    procs.push(...servers.map((s) => s.child));
    const ingest = await upsertAll(front.url, items, N, dim, 1000, 2, () => {});
    const pass = await retrievePass(front.url, bodies, exact.truth, 10, N);
    // Retrieval by generated SIDs (beams of 32 from the single node's beam, no rerank): fans out to every shard too.
    sids ??= (await sidsBodies(front.url, queries, Q, dim, 32, 10)).bodies;
    const load = [];
    const batched = [batchBodies(bodies, BATCH), batchBodies(sids, BATCH)];
    for (const [b, c, per] of [[bodies, 1, 1], [bodies, 8, 1], [sids, 8, 1], [batched[0]!, 8, BATCH], [batched[1]!, 8, BATCH]] as const) {
      const run = await runLoad({ url: front.url, path: per > 1 ? '/v1/retrieve/batch' : '/v1/retrieve', bodies: b, connections: c, durationS: Number(args.duration) });
      const failed = run.non2xx + run.errors > 0 ? `, ${run.non2xx} non-2xx, ${run.errors} errors` : '';
      load.push(`${(run.qps * per).toFixed(0)} (p50 ${run.latencyMs.p50.toFixed(1)} ms${failed})`);
    }
    rows.push([setup, ingest.itemsPerSecond.toFixed(0), pass.recall.toFixed(3), ...load]);
    for (const s of servers) await s.stop();
  }
  console.log(`items ${N}, ${dim}-d (${data}), model ${bundle.manifest.id}, ${Q} queries, one sidx encoder worker per node`);
  console.log(`| setup | ingest items/s (1,000 per batch, 2 in flight) | recall@10 vs exact | QPS @1 | QPS @8 | sids mode QPS @8 | batches of ${BATCH}: queries/s @8 | sids batches of ${BATCH}: queries/s @8 |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} finally {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
}
