/** Cluster tests' shared pieces: a local `nats-server -js` and `sidx serve` children on it, and HTTP shorthands. */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startNatsServer } from '../../src/bench/nats-server.ts';
import { tempDir } from './paths.ts';
import { exited, startServer, waitReady, type ServerProcess } from './server-process.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** A JSON request and its parsed answer. */
export const json = async (url: string, method = 'GET', body?: unknown) => {
  const res = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: (await res.json()) as any };
};

/** A float32 vector as the API's base64. */
export const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

export { sleep };

/** Polls `ok` every 100 ms; on a timeout the error carries what `diagnose` says (e.g. a job's view, the nodes' log tails). */
export async function until(what: string, ok: () => Promise<boolean>, ms = 30_000, diagnose?: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${diagnose ? `\n${await diagnose()}` : ''}`);
    await sleep(100);
  }
}

export interface LocalCluster {
  natsUrl: string;
  /** Starts `sidx serve ARGS --model <model> --workers 1` with the cluster's environment (plus `extra`), once ready. */
  serve(args: string[], extra?: Record<string, string>): Promise<ServerProcess>;
  /** Starts replica `name` of shard `shard` of `shards`, its data in `<dir>/shard<shard><name>`. */
  replica(shard: number, shards: number, name: string): Promise<ServerProcess>;
  /**
   * Kills every process started (SIGKILL) and waits for them to exit; a sidx node that had exited on its own before
   * (an exit code, or a signal other than a test's SIGKILL) is named in a diagnostic of `t` with its exit code and the end of its output (a test that fails because a node
   * died then says why).
   */
  stop(): Promise<void>;
}

/**
 * A NATS server with JetStream storing under `dir` and a way to start sidx nodes on it (SIDX__CLUSTER__URL set).
 * The caller stops it after the test, before it removes `dir` (JetStream may still be writing there).
 */
export async function localCluster(t: TestContext, dir: string, model: string, env: Record<string, string>): Promise<LocalCluster> {
  const nats = await startNatsServer(join(dir, 'jetstream'));
  const nodes: ServerProcess[] = [];
  const serve = async (args: string[], extra: Record<string, string> = {}) => {
    const s = await startServer([...args, '--model', model, '--workers', '1'], { SIDX__CLUSTER__URL: nats.url, ...env, ...extra });
    nodes.push(s);
    await waitReady(s.url, undefined, s);
    return s;
  };
  const replica = (shard: number, shards: number, name: string) =>
    serve(['--data-dir', join(dir, `shard${shard}${name}`), '--role', 'shard', '--shard', `${shard}/${shards}`, '--replica', name]);
  const stop = async () => {
    for (const s of nodes) {
      const { exitCode, signalCode } = s.child;
      if (exitCode !== null || (signalCode !== null && signalCode !== 'SIGKILL')) { // a test's own kill is SIGKILL
        t.diagnostic(`sidx serve ${s.url} exited on its own (${exitCode ?? signalCode}); its output:\n${s.output().slice(-4000)}`);
      }
    }
    const children: ChildProcess[] = [nats.child, ...nodes.map((s) => s.child)];
    await Promise.all(children.map((c) => {
      c.kill('SIGKILL');
      return exited(c);
    }));
  };
  return { natsUrl: nats.url, serve, replica, stop };
}

/**
 * A temporary directory for a cluster test, and a start of the cluster in it (localCluster): both go after the test,
 * the cluster first (JetStream may still be writing in the directory).
 */
export function clusterDir(t: TestContext, prefix: string): { dir: string; start: (model: string, env: Record<string, string>) => Promise<LocalCluster> } {
  const { dir, cleanup } = tempDir(prefix);
  let cluster: LocalCluster | undefined;
  t.after(async () => {
    try {
      await cluster?.stop();
    } finally {
      cleanup();
    }
  });
  return { dir, start: async (model, env) => (cluster = await localCluster(t, dir, model, env)) };
}
