/**
 * Restart with a re-index in its drop phase (issue 14): a catalog of 20,000 items (two small test models, 32-d),
 * a re-index stopped by a graceful close as soon as it reaches the drop phase, then a new service: the time until
 * /readyz answers over loopback, and until the resumed drop has finished in the background.
 *
 *   node --import tsx bench/reindex-restart.bench.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import { randomMatrix } from '../test/helpers/random.ts';
import { writeTestBundle } from '../test/helpers/service.ts';
const N = 20000, DIM = 32;
const root = mkdtempSync(join(tmpdir(), 'sidx-restart-'));
const silent = { info: () => {}, warn: () => {} };
await writeTestBundle(join(root, 'models', 'a'), { dim: DIM, levels: 3, codebookSize: 16, seed: 1 });
const b = await writeTestBundle(join(root, 'models', 'b'), { dim: DIM, levels: 3, codebookSize: 16, seed: 2 });
const config = loadConfig({ storage: { dataDir: join(root, 'data') }, model: { dir: join(root, 'models', 'a'), registryDir: join(root, 'models') }, limits: { maxBatch: 10_000 } }, {});
let service = await SidxService.open(config, silent);
let app = await buildApp({ service, config });
const vectors = randomMatrix(N, DIM, 7);
for (let i = 0; i < N; i += 5000) {
  const items = Array.from({ length: 5000 }, (_, k) => ({ id: `i${i + k}`, embedding: Array.from(vectors.subarray((i + k) * DIM, (i + k + 1) * DIM)) }));
  await app.inject({ method: 'POST', url: '/v1/items', payload: { items } });
}
await app.inject({ method: 'POST', url: '/v1/models', payload: { path: 'b' } });
const job = (await app.inject({ method: 'POST', url: '/v1/reindex', payload: { model: b.id, batchSize: 5000 } })).json();
while (service.getJob(job.id).phase !== 'drop' && service.getJob(job.id).phase !== 'done') await new Promise((r) => setTimeout(r, 1));
console.log('phase at stop', service.getJob(job.id).phase);
await app.close();
await service.close();
const t0 = performance.now();
service = await SidxService.open(config, silent);
app = await buildApp({ service, config });
await app.listen({ port: 0, host: '127.0.0.1' });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const res = await fetch(`${base}/readyz`);
console.log(`restart to /readyz ${res.status}: ${(performance.now() - t0).toFixed(0)} ms; job phase then ${service.getJob(job.id).phase}`);
while (service.getJob(job.id).status === 'running') await new Promise((r) => setTimeout(r, 10));
console.log(`drop done ${(performance.now() - t0).toFixed(0)} ms after the restart began`);
await app.close();
await service.close();
rmSync(root, { recursive: true, force: true });
