/** Runs `sidx serve` as a real child process on a loopback port, for CLI and crash tests. */
import type { ChildProcess } from 'node:child_process';
import { spawnServe, type ServeProcess } from '../../src/bench/server.ts';

export type ServerProcess = ServeProcess;

export function startServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  return spawnServe(args, env, 60_000);
}

export async function waitReady(url: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) return (await res.json()) as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms (last status ${res?.status})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
