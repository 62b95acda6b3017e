/**
 * A cluster router enforces auth like a single node: keys from the control plane in its own data directory
 * (service/key-store.ts), scopes per route (http/auth.ts). A real nats-server; the router in process.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { natsServerMissing, startNatsServer } from '../../src/bench/nats-server.ts';
import { ClusterRouter } from '../../src/cluster/router.ts';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { SidxMetrics } from '../../src/service/metrics.ts';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { tempDir } from '../helpers/paths.ts';
import { silentLog, writeTestBundle } from '../helpers/service.ts';

test('a router with auth.mode all checks keys from its data directory: none 401, unknown or revoked 403, too small a scope 403, a good one passes', { skip: natsServerMissing(), timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('sidx-router-auth-');
  const nats = await startNatsServer(join(dir, 'js'));
  await writeTestBundle(join(dir, 'm'), { dim: 8, levels: 2, codebookSize: 4, seed: 1 });
  const config = loadConfig({
    storage: { dataDir: join(dir, 'router') }, model: { dir: join(dir, 'm') }, encoder: { workers: 1 }, auth: { mode: 'all' },
    cluster: { url: nats.url, role: 'router', shards: 1, requestTimeoutMs: 200 },
  }, {});
  const metrics = new SidxMetrics();
  const router = await ClusterRouter.open(config, { ...silentLog, error: () => {} }, metrics);
  const app = await buildApp({ service: router, config, metrics });
  t.after(async () => {
    await app.close();
    await router.close(); // before the NATS server goes: a drain against a dead server would wait for it
    metrics.close();
    nats.child.kill('SIGKILL');
    cleanup();
  });
  const control = ControlPlane.open(join(dir, 'router', 'control.sqlite')); // what `sidx keys create --data-dir` does
  const read = control.keys.create('reader', 'read').key;
  const admin = control.keys.create('admin', 'admin').key;
  const revoked = control.keys.create('old', 'admin');
  control.keys.revoke(revoked.id);
  control.close();
  const get = (key?: string) => app.inject({ method: 'GET', url: '/v1/models', headers: key ? { authorization: `Bearer ${key}` } : {} });

  assert.equal((await get()).statusCode, 401);
  assert.equal((await get(`${read}x`)).statusCode, 403);
  assert.equal((await get(revoked.key)).statusCode, 403);
  const small = await get(read);
  assert.equal(small.statusCode, 403, 'the registry needs admin');
  assert.equal(small.json().field, 'authorization');
  const ok = await get(admin);
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().models.length, 1, 'the router registered its model in the cluster registry');
});
