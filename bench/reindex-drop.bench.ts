/**
 * Request latency while a re-index drops the old key space, beside the same requests outside it (issue 14).
 * A catalog of --items items (two small test models, 32-d), a re-index to the second; from its start to its end,
 * GET /healthz and POST /v1/retrieve (k = 10) are sent one after another over loopback HTTP, each counted in the
 * phase the job was in when it was sent; outside it, 300 pairs before the job and as many after it as make the two
 * sides equal (at least 300). It also prints the event loop's delay (monitorEventLoopDelay) during the drop.
 *
 *   node --import tsx bench/reindex-drop.bench.ts [--items 20000] [--batch 1000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import { randomMatrix } from '../test/helpers/random.ts';
import { writeTestBundle } from '../test/helpers/service.ts';
import { benchArgs, latencySummary } from './lib.ts';

const args = benchArgs({ items: { type: 'string', default: '20000' }, batch: { type: 'string', default: '1000' } });
const N = Number(args.items);
const DIM = 32;
const root = mkdtempSync(join(tmpdir(), 'sidx-drop-bench-'));
const silent = { info: () => {}, warn: () => {} };
const a = await writeTestBundle(join(root, 'models', 'a'), { dim: DIM, levels: 3, codebookSize: 16, seed: 1 });
const b = await writeTestBundle(join(root, 'models', 'b'), { dim: DIM, levels: 3, codebookSize: 16, seed: 2 });
const config = loadConfig({
  storage: { dataDir: join(root, 'data') }, model: { dir: join(root, 'models', 'a'), registryDir: join(root, 'models') },
  limits: { maxBatch: 10_000 },
}, {});
const service = await SidxService.open(config, silent);
const app = await buildApp({ service, config });
await app.listen({ port: 0, host: '127.0.0.1' });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const vectors = randomMatrix(N, DIM, 7);
const emb = (i: number) => Array.from(vectors.subarray(i * DIM, (i + 1) * DIM));

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return res.json();
}

const loopSummary = (h: IntervalHistogram) => `p50 ${(h.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms, max ${(h.max / 1e6).toFixed(1)} ms`;

try {
  for (let i = 0; i < N; i += 5000) {
    await call('POST', '/v1/items', { items: Array.from({ length: Math.min(5000, N - i) }, (_, k) => ({ id: `i${i + k}`, embedding: emb(i + k) })) });
  }
  await call('POST', '/v1/models', { path: 'b' });
  const outside = { healthz: [] as number[], retrieve: [] as number[] };
  const probeOutside = async (n: number) => {
    for (let q = 0; q < n; q++) {
      outside.healthz.push(await probe('/healthz'));
      outside.retrieve.push(await probe('/v1/retrieve', { embedding: emb(q % N), k: 10 }));
    }
  };
  const probe = async (path: string, body?: unknown) => {
    const t0 = performance.now();
    await call(body ? 'POST' : 'GET', path, body);
    return performance.now() - t0;
  };
  // Outside the drop: a window before the job and one after it (noise on a shared host then hits both sides).
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  await probeOutside(300);
  const loopOutside = loopSummary(loopDelay);
  // Probes from the job's start to its end, each counted in the phase the job was in when it was sent.
  const during = { healthz: [] as number[], retrieve: [] as number[] };
  const job = await call('POST', '/v1/reindex', { model: b.id, batchSize: Number(args.batch) });
  let dropStart = 0;
  let dropEnd = 0;
  let slowest = 0;
  for (let q = 0; ; q++) {
    const phase = service.getJob(job.id).phase;
    if (phase === 'done') break;
    if (phase === 'drop' && dropStart === 0) {
      dropStart = performance.now();
      loopDelay.reset();
    }
    const h = await probe('/healthz');
    const r = await probe('/v1/retrieve', { embedding: emb(q % N), k: 10 });
    slowest = Math.max(slowest, h, r);
    if (phase === 'drop') {
      during.healthz.push(h);
      during.retrieve.push(r);
      dropEnd = performance.now();
    }
  }
  const loopDuring = loopSummary(loopDelay);
  await probeOutside(Math.max(300, during.healthz.length - 300));
  const fmt = (s: number[]) => { const l = latencySummary(s); return `n=${s.length} p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${Math.max(...s).toFixed(1)} ms`; };
  console.log(`items ${N}, models ${a.id} -> ${b.id}, drop phase ~${(dropEnd - dropStart).toFixed(0)} ms; slowest request during the job ${slowest.toFixed(0)} ms`);
  console.log(`/healthz during the drop: ${fmt(during.healthz)}; outside: ${fmt(outside.healthz)}`);
  console.log(`/v1/retrieve during the drop: ${fmt(during.retrieve)}; outside: ${fmt(outside.retrieve)}`);
  console.log(`event-loop delay during the drop: ${loopDuring}; before the job: ${loopOutside}`);
} finally {
  await app.close();
  await service.close();
  rmSync(root, { recursive: true, force: true });
}
