// The load generator's thread (src/bench/load.ts runLoad): autocannon POSTs workerData.bodies round-robin and the
// latency of each 2xx response is kept. A thread of its own because every response's socket buffers count as V8
// external memory, which starts a full collection of the heap about every 0.6 s under load: in the bench's thread,
// with the bench's own objects live, those took 4-19 ms each, and every request in flight waited that much longer
// (docs/benchmarks.md, "Where it stands (stop 33)"). Here the heap holds the bodies and the latencies only.
// Plain JavaScript: the thread needs no TypeScript loader.
//
// workerData: { url, path, bodies: string[], connections, durationS, overallRate?, timeoutS? }
// -> { type: 'done', samples: Float64Array (transferred), requests, duration, errors, timeouts, non2xx, cpuMs } | { type: 'error', message }
// cpuMs: the process's CPU time while autocannon ran (the calling thread only waits meanwhile), without this thread's start.
import { parentPort, workerData } from 'node:worker_threads';

const o = workerData;
try {
  const { default: autocannon } = await import('autocannon').catch((err) => {
    throw new Error(`autocannon is not installed (it is a devDependency: run npm install): ${err.message}`);
  });
  let next = 0;
  let samples = new Float64Array(1 << 16);
  let count = 0;
  const cpu0 = process.cpuUsage();
  const instance = autocannon({
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
    if (statusCode < 200 || statusCode >= 300) return;
    if (count === samples.length) {
      const grown = new Float64Array(2 * samples.length);
      grown.set(samples);
      samples = grown;
    }
    samples[count++] = responseTime;
  });
  const result = await instance;
  const cpu = process.cpuUsage(cpu0);
  const kept = samples.slice(0, count);
  parentPort.postMessage({
    // Inside a worker thread autocannon answers its raw result (unaggregated): completed requests are totalCompletedRequests.
    type: 'done', samples: kept, requests: result.totalCompletedRequests ?? result.requests.total, duration: result.duration,
    errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx,
    cpuMs: (cpu.user + cpu.system) / 1000,
  }, [kept.buffer]);
} catch (err) {
  parentPort.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
