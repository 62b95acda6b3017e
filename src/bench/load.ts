/**
 * HTTP load with autocannon (a devDependency, loaded on first use) in a worker thread of its own: POST bodies taken
 * round-robin from a list, a fixed number of connections, optionally a fixed overall request rate. Latencies are
 * collected per response (autocannon's own histogram has no p95) and summarised here.
 */
import { Worker } from 'node:worker_threads';
import { repoUrl } from '../paths.ts';
import { latencySummary, type LatencySummary } from './stats.ts';

export interface LoadOptions {
  url: string;
  path: string;
  bodies: readonly string[];
  connections: number;
  durationS: number;
  /** Requests per second across all connections (open-loop pacing); unlimited when absent. */
  overallRate?: number;
  timeoutS?: number;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  overallRate?: number;
  requests: number;
  qps: number;
  latencyMs: LatencySummary;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** The load generator's CPU ms over the run (this process's, while autocannon ran in its worker thread). */
  loadGeneratorCpuMs: number;
}

interface WorkerReply {
  type: 'done' | 'error';
  message?: string;
  samples: Float64Array;
  requests: number;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  cpuMs: number;
}

const LOAD_WORKER = repoUrl('src/bench/load-worker.mjs');

/** One load run, generated in a worker thread of its own (load-worker.mjs says why). */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (o.bodies.length === 0) throw new Error('runLoad needs at least one body');
  const worker = new Worker(LOAD_WORKER, {
    execArgv: [],
    workerData: { url: o.url, path: o.path, bodies: o.bodies, connections: o.connections, durationS: o.durationS, overallRate: o.overallRate, timeoutS: o.timeoutS },
  });
  const reply = await new Promise<WorkerReply>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`load worker exited (code ${code}) before it answered`)));
  });
  await worker.terminate();
  if (reply.type === 'error') throw new Error(reply.message);
  return {
    connections: o.connections,
    durationS: o.durationS,
    overallRate: o.overallRate,
    requests: reply.requests,
    qps: reply.samples.length / (reply.duration || o.durationS),
    latencyMs: latencySummary(reply.samples),
    errors: reply.errors,
    timeouts: reply.timeouts,
    non2xx: reply.non2xx,
    loadGeneratorCpuMs: reply.cpuMs,
  };
}
