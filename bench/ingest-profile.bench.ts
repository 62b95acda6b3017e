/**
 * Where `POST /v1/items` spends the server's CPU: a real `sidx serve` child started with `--cpu-prof`, fed the
 * catalog of `sidx bench` (src/bench/synthetic-catalog.ts) in base64 batches as `sidx bench` sends them; after a
 * clean stop it prints the ingest rate, the server's CPU per thread, where a batch's time goes (its upsert phases from
 * /metrics) and, per thread profile the server wrote, the functions with the most self time.
 *
 *   node --import tsx bench/ingest-profile.bench.ts [--items 100000] [--batch 1000] [--concurrency 2]
 *        [--model models/default] [--dir /tmp/sidx-ingest-profile] [--no-profile] [--rounds 1] [--env K=V,...]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { upsertAll } from '../src/bench/http.ts';
import { phaseDelta, readPhases } from '../src/bench/phases.ts';
import { cpuMeter, processMemory, SIDX_SERVE, spawnListening, threadCpuLine, threadCpuMeter } from '../src/bench/server.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { benchArgs, envPairs, printTopSelfTime, type CpuProfile } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, batch: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '2' },
  model: { type: 'string', default: 'models/default' }, dir: { type: 'string', default: join(tmpdir(), 'sidx-ingest-profile') },
  'no-profile': { type: 'boolean', default: false }, rounds: { type: 'string', default: '1' }, env: { type: 'string', default: '' },
});
const n = Number(args.items);
const profiles = resolve(String(args.dir));
rmSync(profiles, { recursive: true, force: true });
mkdirSync(profiles, { recursive: true });
const { items, data } = await syntheticCatalog({ n, q: 1, dim: 512, seed: 1 });
const profile = !args['no-profile'];
const mib = (b: number) => (b / 2 ** 20).toFixed(0);
const extraEnv = envPairs(String(args.env));
for (let round = 1; round <= Number(args.rounds); round++) {
  const dataDir = mkdtempSync(join(tmpdir(), 'sidx-ingest-data-'));
  try {
    const server = await spawnListening('sidx serve', [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`] : []), ...SIDX_SERVE, '--port', '0',
      '--host', '127.0.0.1', '--data-dir', dataDir, '--model', resolve(String(args.model))], { SIDX__LIMITS__MAX_BATCH: String(args.batch), ...extraEnv }, 120_000);
    while ((await fetch(`${server.url}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 100));
    const meter = cpuMeter(server.child.pid!);
    const threads = threadCpuMeter(server.child.pid!);
    const phasesBefore = await readPhases(server.url, '/v1/items');
    const client = process.cpuUsage();
    const ingest = await upsertAll(server.url, items, n, 512, Number(args.batch), Number(args.concurrency), () => {});
    const clientCpu = process.cpuUsage(client);
    const cpu = meter();
    const phases = phaseDelta(phasesBefore, await readPhases(server.url, '/v1/items'));
    const perThread = threads();
    const mem = processMemory(server.child.pid!);
    const wall = n / ingest.itemsPerSecond;
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    console.log(`round ${round}: ${n} items (${data}), ${args.batch} per batch, ${args.concurrency} in flight: ${ingest.itemsPerSecond.toFixed(0)} items/s, `
      + `batch p50 ${ingest.batchLatencyMs.p50.toFixed(0)} ms, max ${ingest.batchLatencyMs.max.toFixed(0)} ms; `
      + `RSS after ingest ${mib(mem.rssBytes)} MiB (anon ${mib(mem.anonBytes)}, file ${mib(mem.fileBytes)}); `
      + `server CPU ${cpu.processSeconds.toFixed(1)} s over ${wall.toFixed(1)} s, machine ${(100 * cpu.machineBusy).toFixed(0)}% busy; `
      + `the client's CPU ${((clientCpu.user + clientCpu.system) / n).toFixed(1)} ms per 1,000 items`);
    console.log(threadCpuLine(perThread, n / 1000, '1,000 items'));
    if (phases) {
      console.log(`where a batch's time goes (mean ms, sidx_request_phase_seconds{route="/v1/items"}): ${Object.entries(phases.meanMs)
        .map(([phase, ms]) => `${phase} ${ms.toFixed(1)}`).join(', ')}`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
for (const file of readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  console.log(`\n${file} (the first is the main thread)`);
  printTopSelfTime(JSON.parse(readFileSync(join(profiles, file), 'utf8')) as CpuProfile, 15);
}
