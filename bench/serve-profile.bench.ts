/**
 * Where a real `sidx serve` spends its main thread under HTTP load: a catalog of `sidx bench`'s synthetic items is
 * upserted into a server started with `--cpu-prof`, then autocannon keeps `--connections` retrieves in flight for
 * `--duration` seconds; on SIGTERM the server writes its main-thread CPU profile, and this prints QPS, the top self
 * time by function and by module. The catalog is kept in `--data-dir` (reused when it already holds the items),
 * so a change can be profiled again without a new ingest.
 *
 *   SIDX_SHARED_DATA=../shared/data node --import tsx bench/serve-profile.bench.ts [--items 100000] [--queries 500]
 *        [--connections 8] [--duration 10] [--model models/default] [--data-dir /tmp/sidx-serve-profile]
 *        [--body '{"expand":"beam"}'] [--env SIDX__VECTORS__STORAGE=sq8] [--no-profile] [--sids 32]
 *        [--node-args='--trace-gc --initial-old-space-size=0'] [--order arrival|sid] [--batch 32] [--peer bare]
 *
 * `--order sid`: the items are upserted in the order of their SIDs (bench/served-catalog.ts sidOrdered), so that the
 * catalog's code and vector rows lie in SID order; use another `--data-dir` than the arrival-order catalog's.
 * `--sids W` loads the server with `sidx bench`'s sids-mode bodies instead (`{sids, k: 10, rerank: false}`: each
 * query's beam of W generated SIDs, asked of the profiled server first). `--node-args`: node flags for the server after
 * its own (src/node-flags.ts), so they can override them; with --trace-gc, the load run's V8 collections are counted.
 * `--batch B`: the same queries B to a request of POST /v1/retrieve/batch; the figures are then per query too.
 * `--peer bare`: the same bodies (and node flags, profile) against `sidx bench`'s bare route instead of sidx (sidx
 * serves only to make the sids-mode bodies): the price of HTTP + JSON alone, phase by phase beside sidx's.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { batchBodies, retrieveBodies, sidsBodies } from '../src/bench/http.ts';
import { runLoad } from '../src/bench/load.ts';
import { startPeer } from '../src/bench/peers.ts';
import { cpuMeter, threadCpuLine, threadCpuMeter } from '../src/bench/server.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { benchArgs, envPairs, printTopSelfTime, type CpuProfile } from './lib.ts';
import { ensureCatalog, sidOrdered, startServe } from './served-catalog.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, queries: { type: 'string', default: '500' },
  connections: { type: 'string', default: '8' }, duration: { type: 'string', default: '10' },
  model: { type: 'string', default: 'models/default' }, 'data-dir': { type: 'string', default: '/tmp/sidx-serve-profile' },
  body: { type: 'string', default: '{}' }, env: { type: 'string', default: '' }, 'no-profile': { type: 'boolean', default: false },
  sids: { type: 'string', default: '0' }, 'node-args': { type: 'string', default: '' }, order: { type: 'string', default: 'arrival' },
  batch: { type: 'string', default: '0' }, peer: { type: 'string', default: '' },
});
const N = Number(args.items);
const Q = Number(args.queries);
const DIM = 512;
const dataDir = resolve(String(args['data-dir']));
const profDir = join(dataDir, 'profiles');
const env: Record<string, string> = { SIDX__SERVER__LOG_LEVEL: 'info', ...envPairs(String(args.env)) };

const { items: arrival, queries } = await syntheticCatalog({ n: N, q: Q, dim: DIM, seed: 1 });
if (args.order !== 'arrival' && args.order !== 'sid') throw new Error(`--order must be arrival or sid, got ${String(args.order)}`);
const items = args.order === 'sid' ? await sidOrdered(arrival, N, DIM, String(args.model)) : arrival;
const catalog = { items, n: N, dim: DIM, dataDir, model: String(args.model), env };
mkdirSync(dataDir, { recursive: true });
await ensureCatalog(catalog);

const profile = !args['no-profile'];
rmSync(profDir, { recursive: true, force: true });
const nodeArgs = String(args['node-args']).split(' ').filter(Boolean);
if (args.peer !== '' && args.peer !== 'bare') throw new Error(`--peer must be bare, got ${String(args.peer)}`);
const serverArgs = [...nodeArgs, ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])];
const bare = args.peer === 'bare';
let server = await startServe(catalog, bare ? [] : serverArgs);
const sidsBeam = Number(args.sids);
const single = sidsBeam > 0
  ? (await sidsBodies(server.url, queries, Q, DIM, sidsBeam, 10)).bodies
  : retrieveBodies(queries, Q, DIM, JSON.parse(String(args.body)) as Record<string, unknown>);
const batch = Number(args.batch);
const bodies = batch > 0 ? batchBodies(single, batch) : single;
const path = batch > 0 ? '/v1/retrieve/batch' : '/v1/retrieve';
const perRequest = Math.max(1, batch);
if (bare) {
  await server.stop();
  server = await startPeer('bare', { dim: DIM, metric: 'ip', connectivity: 16, addThreads: 1, bodyLimitBytes: 64 * 1024 * 1024, workDir: dataDir }, serverArgs);
}
await runLoad({ url: server.url, path, bodies, connections: 8, durationS: 2 }); // warm up
const logMark = server.output().length;
const meter = cpuMeter(server.pid);
const threads = threadCpuMeter(server.pid);
const load = await runLoad({ url: server.url, path, bodies, connections: Number(args.connections), durationS: Number(args.duration) });
const { processSeconds: serverCpu, machineBusy: busy } = meter();
const perThread = threads();
await server.stop();
console.log(`${bare ? 'bare route, ' : ''}${N} items, ${args.connections} connections, ${args.duration} s, body ${args.body}${args.env ? `, env ${args.env}` : ''}: `
  + `${sidsBeam > 0 ? `sids mode (beams of ${sidsBeam}), ` : ''}${batch > 0 ? `batches of ${batch} (${Math.round(load.qps * batch)} queries/s, server CPU ${((1000 * serverCpu) / Math.max(1, load.requests * batch)).toFixed(3)} ms per query), ` : ''}${Math.round(load.qps)} QPS, p50 ${load.latencyMs.p50.toFixed(2)} ms, p99 ${load.latencyMs.p99.toFixed(2)} ms, non-2xx ${load.non2xx}, errors ${load.errors}; `
  + `server CPU ${serverCpu.toFixed(1)} s (${((1000 * serverCpu) / Math.max(1, load.requests)).toFixed(2)} ms per request), load generator ${(load.loadGeneratorCpuMs / Math.max(1, load.requests)).toFixed(3)} ms per request, machine ${(100 * busy).toFixed(0)}% busy`);
console.log(threadCpuLine(perThread, load.requests * perRequest, batch > 0 ? 'query' : 'request'));
if (nodeArgs.includes('--trace-gc')) console.log(gcLine(server.output().slice(logMark)));
if (profile) {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no CPU profile in ${profDir}`);
  const cpu = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile;
  printTopSelfTime(cpu, 30);
  printByModule(cpu);
}

/** Self time summed by source file (node_modules: by package). */
function printByModule(cpu: CpuProfile): void {
  const self = new Map<number, number>();
  cpu.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (cpu.timeDeltas[i] ?? 0)));
  const byModule = new Map<string, number>();
  let total = 0;
  for (const node of cpu.nodes) {
    const us = self.get(node.id) ?? 0;
    total += us;
    const url = node.callFrame.url;
    const name = url.includes('node_modules/') ? url.split('node_modules/').pop()!.split('/')[0]! : url.split('/').pop() || node.callFrame.functionName || '(native)';
    byModule.set(name, (byModule.get(name) ?? 0) + us);
  }
  console.log('| self ms | share | module |\n|---|---|---|');
  for (const [name, us] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`| ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)}% | ${name} |`);
  }
}

/**
 * The V8 collections --trace-gc logged: count and summed pause per kind, the heap left after the mark-compacts, and
 * with --trace-incremental-marking the old generation's size / limit / headroom when marking started.
 */
function gcLine(log: string): string {
  const kinds = new Map<string, { n: number; ms: number }>();
  const after: number[] = [];
  for (const m of log.matchAll(/: (Scavenge|Mark-Compact|Minor Mark-Compact)\b[^\n]*?-> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms/g)) {
    const k = kinds.get(m[1]!) ?? { n: 0, ms: 0 };
    kinds.set(m[1]!, { n: k.n + 1, ms: k.ms + Number(m[3]) });
    if (m[1] === 'Mark-Compact') after.push(Number(m[2]));
  }
  const starts = [...log.matchAll(/Start \(task\): \(size\/limit\/slack\) v8: (\d+)MB \/ (\d+)MB \/ (\d+)MB/g)].map((m) => `${m[1]}/${m[2]}/${m[3]}`);
  const counts = [...kinds].map(([kind, k]) => `${kind} ${k.n} (${k.ms.toFixed(0)} ms paused)`).join(', ') || 'none';
  return `V8 collections during the load: ${counts}`
    + (after.length > 0 ? `; heap after mark-compact ${Math.min(...after)}-${Math.max(...after)} MB` : '')
    + (starts.length > 0 ? `; marking started at old-generation size/limit/headroom (MB) ${[...new Set(starts)].slice(0, 6).join(', ')}` : '');
}
