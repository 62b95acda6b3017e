/** Cluster tests' shared pieces: a local `nats-server -js` and `sidx serve` children on it, and HTTP shorthands. */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startNatsServer } from '../../src/bench/nats-server.ts';
import { startServer, waitReady, type ServerProcess } from './server-process.ts';

/** A JSON request and its parsed answer. */
export const json = async (url: string, method = 'GET', body?: unknown) => {
  const res = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: (await res.json()) as any };
};

/** A float32 vector as the API's base64. */
export const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

export interface LocalCluster {
  natsUrl: string;
  /** Starts `sidx serve ARGS --model <model> --workers 1` with the cluster's environment (plus `extra`), once ready. */
  serve(args: string[], extra?: Record<string, string>): Promise<ServerProcess>;
  /** Starts replica `name` of shard `shard` of `shards`, its data in `<dir>/shard<shard><name>`. */
  replica(shard: number, shards: number, name: string): Promise<ServerProcess>;
}

/**
 * A NATS server with JetStream storing under `dir` and a way to start sidx nodes on it (SIDX__CLUSTER__URL set);
 * every process started is killed with SIGKILL after the test.
 */
export async function localCluster(t: TestContext, dir: string, model: string, env: Record<string, string>): Promise<LocalCluster> {
  const procs: ChildProcess[] = [];
  t.after(() => {
    for (const p of procs) p.kill('SIGKILL');
  });
  const nats = await startNatsServer(join(dir, 'jetstream'));
  procs.push(nats.child);
  const serve = async (args: string[], extra: Record<string, string> = {}) => {
    const s = await startServer([...args, '--model', model, '--workers', '1'], { SIDX__CLUSTER__URL: nats.url, ...env, ...extra });
    procs.push(s.child);
    await waitReady(s.url, undefined, s);
    return s;
  };
  const replica = (shard: number, shards: number, name: string) =>
    serve(['--data-dir', join(dir, `shard${shard}${name}`), '--role', 'shard', '--shard', `${shard}/${shards}`, '--replica', name]);
  return { natsUrl: nats.url, serve, replica };
}
