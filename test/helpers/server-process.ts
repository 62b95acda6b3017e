/** Runs `sidx serve` as a real child process on a loopback port, for CLI and crash tests. */
import { execFile, type ChildProcess } from 'node:child_process';
import { finished } from 'node:stream/promises';
import { REPO_ROOT, SIDX_SERVE, spawnServe, type ServeProcess } from '../../src/bench/server.ts';

export type ServerProcess = ServeProcess;

export function startServer(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<ServerProcess> {
  return spawnServe(args, env, 60_000, cwd);
}

/** Polls `url`/readyz until it answers 200; with `server`, fails at once when it exits and names its output. */
export async function waitReady(url: string, timeoutMs = 60_000, server?: ServerProcess): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  const output = () => (server ? `; its output:\n${server.output().slice(-4000)}` : '');
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) return (await res.json()) as Record<string, unknown>;
    if (server && server.child.exitCode !== null) throw new Error(`the server exited with ${server.child.exitCode} before it was ready${output()}`);
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms (last status ${res?.status})${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** exited, then once its stdout and stderr are read to their end (the last lines it wrote are in its output()). */
export async function exitedAndRead(child: ChildProcess): Promise<number | null> {
  const code = await exited(child);
  await Promise.all([child.stdout, child.stderr].map((s) => s && finished(s).catch(() => undefined)));
  return code;
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/**
 * Runs `sidx serve ...args` (no --port or --host added) to its exit, for starts that must fail; one that starts
 * instead is killed after two minutes (exit code null).
 */
export function runServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const options = { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 120_000 };
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [...SIDX_SERVE, ...args], options, (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
  });
}
