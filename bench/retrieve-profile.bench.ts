/**
 * Where one /v1/retrieve spends its CPU, in process (Fastify inject, no sockets): a catalog of clustered synthetic
 * items is upserted, then every query is retrieved once per round; per encoder configuration it prints CPU ms per
 * query (all threads of the process: main, encoder workers, ORT pools), wall ms per query and the mean of each
 * server-side phase (timingsMs). Configurations run in the same process one after another, so read the ratios.
 * With --profile FILE it also writes a V8 CPU profile of the last configuration's query rounds and prints the
 * functions with the most self time.
 *
 *   node --import tsx bench/retrieve-profile.bench.ts [--items 20000] [--queries 300] [--model models/default]
 *        [--configs 1x2,2x1] [--expand beam|auto] [--concurrency 1] [--rounds 2] [--profile /tmp/retrieve.cpuprofile]
 * `--configs` lists encoder workers x intra-op threads per worker; `--concurrency` requests are kept in flight.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { readNpy } from '../src/io/npy.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import { clusteredEmbeddings } from '../src/eval/synthetic.ts';
import { benchArgs, markdownTable, printTopSelfTime, type CpuProfile } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '20000' }, queries: { type: 'string', default: '300' },
  model: { type: 'string', default: 'models/default' }, configs: { type: 'string', default: '1x2,2x1' },
  expand: { type: 'string', default: 'beam' }, concurrency: { type: 'string', default: '1' }, rounds: { type: 'string', default: '2' }, profile: { type: 'string' },
});
const N = Number(args.items);
const Q = Number(args.queries);
const rounds = Number(args.rounds);
const concurrency = Number(args.concurrency);
const configs = String(args.configs).split(',').map((c) => c.split('x').map(Number) as [number, number]);
const DIM = 512;
const centres = (await readNpy(resolve('../shared/data/scientific/text_emb.npy')).catch(() => undefined))?.data;
const items = clusteredEmbeddings({ n: N, dim: DIM, seed: 1, centres, noise: 0.6 });
const queries = clusteredEmbeddings({ n: Q, dim: DIM, seed: 2, centres, noise: 0.6 });
const bodies = Array.from({ length: Q }, (_, q) => JSON.stringify({ k: 10, expand: args.expand, embedding: Array.from(queries.subarray(q * DIM, (q + 1) * DIM)) }));
const quiet = { info() {}, warn() {} };
const rows: Array<Array<string | number>> = [];
const PHASES = ['encode', 'beam', 'candidates', 'rerank', 'fetch'] as const;

for (const [c, [workers, threads]] of configs.entries()) {
  const dataDir = mkdtempSync(join(tmpdir(), 'sidx-retrieve-profile-'));
  const config = loadConfig({ storage: { dataDir }, model: { dir: resolve(String(args.model)) }, encoder: { workers, intraOpThreads: threads } }, {});
  const service = await SidxService.open(config, quiet);
  const app = await buildApp({ service, config });
  for (let o = 0; o < N; o += 1000) {
    const batch = [];
    for (let i = o; i < Math.min(N, o + 1000); i++) batch.push({ id: `i${i}`, vector: items.subarray(i * DIM, (i + 1) * DIM) });
    await service.upsert(batch);
  }
  const profiling = args.profile !== undefined && c === configs.length - 1;
  const session = new Session();
  if (profiling) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  for (let r = 0; r < rounds; r++) {
    const phases = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<(typeof PHASES)[number], number>;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) {
        const payload = bodies[next++]!;
        const res = await app.inject({ method: 'POST', url: '/v1/retrieve', payload, headers: { 'content-type': 'application/json' } });
        const timings = res.json().timingsMs as Record<string, number>;
        for (const p of PHASES) phases[p] += timings[p] ?? 0;
      }
    }));
    const wall = (performance.now() - t0) / Q;
    const cpu = process.cpuUsage(cpu0);
    rows.push([`${workers} x ${threads}`, r + 1, ((cpu.user + cpu.system) / 1000 / Q).toFixed(2), wall.toFixed(2), ...PHASES.map((p) => (phases[p] / Q).toFixed(2))]);
    process.stderr.write(`[retrieve-profile] ${workers} x ${threads} round ${r + 1}: ${rows.at(-1)!.slice(2).join(' ')}\n`);
  }
  if (profiling) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(String(args.profile), JSON.stringify(profile));
    printTopSelfTime(profile as unknown as CpuProfile);
  }
  session.disconnect();
  await app.close();
  await service.close();
  rmSync(dataDir, { recursive: true, force: true });
}

console.log(`${N} items, ${Q} queries, expand ${args.expand}, model ${args.model}, ${concurrency} in flight`);
console.log(markdownTable(['workers x threads', 'round', 'CPU ms/query', 'wall ms/query', ...PHASES.map((p) => `${p} ms`)], rows));
