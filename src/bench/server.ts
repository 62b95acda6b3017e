/**
 * `sidx serve` (and the bench's peer servers) as child processes for benchmarks and load tests (and, through
 * spawnServe, the CLI tests): each server gets its own process (and event loop), so the load generator does not
 * share it, and its memory can be read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { SERVE_NODE_FLAGS } from '../node-flags.ts';
import { repoPath } from '../paths.ts';
import type { LoadResult } from './load.ts';
import type { LoadCpu } from './report.ts';

export const SIDX_BIN = repoPath('bin/sidx.js');
/** `node` arguments that start `sidx serve` as bin/sidx.js's shebang does (src/node-flags.ts). */
export const SIDX_SERVE: readonly string[] = [...SERVE_NODE_FLAGS, SIDX_BIN, 'serve'];
export const REPO_ROOT = repoPath('.');

export interface ProcessMemory {
  /** Resident set size now (anonymous + file-backed pages, e.g. LMDB's mapped pages). */
  rssBytes: number;
  /** Peak resident set size (VmHWM). */
  peakBytes: number;
  /** Of rssBytes: anonymous pages (heap, native allocations) and file-backed ones (mapped LMDB and vector slot file pages, the page cache's). */
  anonBytes: number;
  fileBytes: number;
}

/** VmRSS, VmHWM, RssAnon and RssFile of a Linux process; zeros where /proc is unavailable. */
export function processMemory(pid: number): ProcessMemory {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), peakBytes: kb('VmHWM'), anonBytes: kb('RssAnon'), fileBytes: kb('RssFile') };
  } catch {
    return { rssBytes: 0, peakBytes: 0, anonBytes: 0, fileBytes: 0 };
  }
}

/** User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere). */
function processCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

/** Busy and total CPU clock ticks of the whole machine so far (Linux /proc/stat; zeros elsewhere). */
function machineCpuTicks(): { busy: number; total: number } {
  try {
    const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    return { busy: total - ticks[3]! - ticks[4]!, total }; // idle and iowait are not busy
  } catch {
    return { busy: 0, total: 0 };
  }
}

/**
 * Starts measuring: the returned function gives the CPU seconds process `pid` used since, and the share of the
 * machine's CPU time that was busy meanwhile (everything on it: the load generator too).
 */
export function cpuMeter(pid: number): () => { processSeconds: number; machineBusy: number } {
  const cpu0 = processCpuSeconds(pid);
  const machine0 = machineCpuTicks();
  return () => {
    const machine1 = machineCpuTicks();
    // In whole ticks (seconds would round a fully busy machine to 1.0000000000123), and iowait may go backwards.
    const busy = (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total);
    return { processSeconds: processCpuSeconds(pid) - cpu0, machineBusy: Math.min(1, Math.max(0, busy)) };
  };
}

/**
 * Starts measuring a load run's CPU (report.ts LoadCpu): the returned function, given the run's result, gives server
 * process `pid`'s CPU ms per answered request, the load generator's, and the machine's busy share since; undefined
 * where /proc cannot be read (not Linux) or nothing was answered.
 */
export function loadCpuMeter(pid: number): (load: LoadResult) => LoadCpu | undefined {
  const readable = existsSync(`/proc/${pid}/stat`);
  const server = cpuMeter(pid);
  return (load) => {
    const { processSeconds, machineBusy } = server();
    if (!readable || load.requests <= 0) return undefined;
    return { serverMsPerRequest: (1000 * processSeconds) / load.requests, loadGeneratorMsPerRequest: load.loadGeneratorCpuMs / load.requests, machineBusy };
  };
}

/**
 * Starts measuring per thread: the returned function gives the CPU seconds each thread name of process `pid` used
 * since (threads of one name summed: libuv's pool, V8's workers), busiest first. Linux only (empty elsewhere).
 */
export function threadCpuMeter(pid: number): () => Array<{ name: string; threads: number; seconds: number }> {
  const before = threadCpuSeconds(pid);
  return () => {
    const byName = new Map<string, { threads: number; seconds: number }>();
    for (const [tid, now] of threadCpuSeconds(pid)) {
      const used = now.seconds - (before.get(tid)?.seconds ?? 0);
      if (used <= 0) continue;
      const name = tid === String(pid) ? 'main' : `${now.name} ${tid}`;
      const entry = byName.get(name) ?? { threads: 0, seconds: 0 };
      entry.threads += 1;
      entry.seconds += used;
      byName.set(name, entry);
    }
    return [...byName].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.seconds - a.seconds);
  };
}

/** One line of threadCpuMeter's figures: each thread's CPU ms per `unit` (`count` of them ran), busiest first. */
export function threadCpuLine(threads: Array<{ name: string; threads: number; seconds: number }>, count: number, unit: string): string {
  const busy = threads.filter((t) => (1000 * t.seconds) / Math.max(1, count) >= 0.0005);
  return `server CPU by thread (ms per ${unit}): ${busy.map((t) => `${t.name}${t.threads > 1 ? ` x${t.threads}` : ''} `
    + `${((1000 * t.seconds) / Math.max(1, count)).toFixed(3)}`).join(', ')}`;
}

function threadCpuSeconds(pid: number): Map<string, { name: string; seconds: number }> {
  const out = new Map<string, { name: string; seconds: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      out.set(tid, { name, seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

export interface BenchServer {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Milliseconds from spawn to "listening" and to /readyz 200. */
  startMs: { listening: number; ready: number };
  memory(): ProcessMemory;
  readiness(): Promise<Record<string, unknown>>;
  output(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

export interface BenchServerOptions {
  dataDir: string;
  modelDir: string;
  workers?: number;
  /** Extra SIDX__* variables. */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** `node` arguments after SERVE_NODE_FLAGS (so they may override one) and before the CLI (e.g. --cpu-prof). */
  nodeArgs?: readonly string[];
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** stdout and stderr so far; past 200,000 characters, the first 50,000 and the last 100,000. */
  output(): string;
}

/**
 * Spawns `node ...args` from `cwd` (default: the repository root), with `env` over this process's environment, and
 * resolves once it logs the address it listens at ("listening at http://127.0.0.1:PORT"). Rejects when it exits
 * first; after `timeoutMs` it kills the process and rejects. `name` names it in errors.
 */
export async function spawnListening(name: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number,
  cwd = REPO_ROOT): Promise<ServeProcess> {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d: Buffer) => {
    // Keep the start and the end of the log; a long benchmark must not grow it without bound.
    log += d.toString();
    if (log.length > 200_000) log = log.slice(0, 50_000) + '\n...\n' + log.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not listen within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    const onData = () => {
      const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/i.exec(log);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${log}`));
    });
    timer.unref();
  });
  return { child, url, output: () => log };
}

/** `sidx serve --port 0 --host 127.0.0.1 ...args` through spawnListening. */
export function spawnServe(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number, cwd?: string): Promise<ServeProcess> {
  return spawnListening('sidx serve', [...SIDX_SERVE, '--port', '0', '--host', '127.0.0.1', ...args], env, timeoutMs, cwd);
}

/**
 * A child server from `node ...args` (see spawnListening), once GET /readyz answers 200: its start times, memory,
 * readiness and a SIGTERM stop.
 */
export async function startChildServer(name: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<BenchServer> {
  const t0 = performance.now();
  const { child, url, output } = await spawnListening(name, args, env, timeoutMs);
  const listening = performance.now() - t0;
  const readiness = async () => (await (await fetch(`${url}/readyz`)).json()) as Record<string, unknown>;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready within ${timeoutMs} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = performance.now() - t0;
  return {
    url,
    pid: child.pid!,
    child,
    startMs: { listening, ready },
    memory: () => processMemory(child.pid!),
    readiness,
    output,
    stop: () => {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return done;
    },
  };
}

export function startBenchServer(opts: BenchServerOptions): Promise<BenchServer> {
  // After SERVE_NODE_FLAGS, so that a bench can override one of them (V8 takes the last value of a flag).
  const args = [...SERVE_NODE_FLAGS, ...(opts.nodeArgs ?? []), SIDX_BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', opts.dataDir, '--model', opts.modelDir];
  if (opts.workers !== undefined) args.push('--workers', String(opts.workers));
  return startChildServer('sidx serve', args, { SIDX__SERVER__LOG_LEVEL: 'info', ...opts.env }, opts.timeoutMs);
}
