/**
 * HTTP load with autocannon (a devDependency, loaded on first use): POST bodies taken round-robin from a list,
 * a fixed number of connections, optionally a fixed overall request rate. Latencies are collected per response
 * (autocannon's own histogram has no p95) and summarised here.
 */
import type { Instance, Options, Result } from 'autocannon';
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
}

type Autocannon = (opts: Options) => Instance & PromiseLike<Result>;

let cached: Autocannon | undefined;
async function autocannon(): Promise<Autocannon> {
  if (!cached) {
    try {
      cached = (await import('autocannon')).default as unknown as Autocannon;
    } catch (err) {
      throw new Error(`autocannon is not installed (it is a devDependency: run npm install): ${(err as Error).message}`);
    }
  }
  return cached;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const run = await autocannon();
  if (o.bodies.length === 0) throw new Error('runLoad needs at least one body');
  let next = 0;
  const samples: number[] = [];
  const instance = run({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    timeout: o.timeoutS ?? 10,
    ...(o.overallRate ? { overallRate: o.overallRate } : {}),
    requests: [{
      method: 'POST',
      path: o.path,
      headers: { 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: o.bodies[next++ % o.bodies.length] }),
    }],
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) samples.push(responseTime);
  });
  const result = await instance;
  return {
    connections: o.connections,
    durationS: o.durationS,
    overallRate: o.overallRate,
    requests: result.requests.total,
    qps: samples.length / (result.duration || o.durationS),
    latencyMs: latencySummary(samples),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
}
