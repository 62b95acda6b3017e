/**
 * `sidx bench --reindex-to DIR`: request latency while a re-index drops the old key space (issue 14, item 2),
 * beside the same requests outside it, against a running `sidx serve`. GET /healthz and POST /v1/retrieve (the
 * bench's default bodies) go one after another over loopback; outside = 300 pairs before the job plus as many
 * after it as make the sides equal (a noisy shared host then weighs on both), during = pairs sent while the job
 * reported the drop phase. The job's phase is polled between pairs (not timed); during its other phases
 * (encode, swap) no pair is sent.
 */
import { latencySummary, type LatencySummary } from './stats.ts';

export interface ReindexDropBench {
  /** Registry path of the model re-indexed to. */
  to: string;
  jobMs: number;
  /** From the first to the last pair sent in the drop phase. */
  dropMs: number;
  healthz: { during: LatencySummary; outside: LatencySummary };
  retrieve: { during: LatencySummary; outside: LatencySummary };
}

const OUTSIDE_BEFORE = 300;

async function request(url: string, method: 'GET' | 'POST', body?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body });
  return { status: res.status, json: await res.json() };
}

async function timed(url: string, body?: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(url, body ? 'POST' : 'GET', body);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
  return performance.now() - t0;
}

export async function benchReindexDrop(url: string, bodies: readonly string[], to: string, progress: (msg: string) => void): Promise<ReindexDropBench> {
  const healthz = { during: [] as number[], outside: [] as number[] };
  const retrieve = { during: [] as number[], outside: [] as number[] };
  let q = 0;
  const pair = async (side: 'during' | 'outside') => {
    healthz[side].push(await timed(`${url}/healthz`));
    retrieve[side].push(await timed(`${url}/v1/retrieve`, bodies[q++ % bodies.length]));
  };
  const registered = await request(`${url}/v1/models`, 'POST', JSON.stringify({ path: to }));
  if (registered.status !== 201 && registered.status !== 200) throw new Error(`POST /v1/models ${to}: HTTP ${registered.status} ${JSON.stringify(registered.json)}`);
  progress(`re-index drop: ${OUTSIDE_BEFORE} request pairs before the job`);
  for (let i = 0; i < OUTSIDE_BEFORE; i++) await pair('outside');
  const job = await request(`${url}/v1/reindex`, 'POST', JSON.stringify({ model: registered.json.id }));
  if (job.status !== 202) throw new Error(`POST /v1/reindex: HTTP ${job.status} ${JSON.stringify(job.json)}`);
  progress(`re-index drop: job ${job.json.id} to ${registered.json.id}, request pairs until it ends`);
  const t0 = performance.now();
  let dropStart = 0;
  let dropEnd = 0;
  for (;;) {
    const { json: view } = await request(`${url}/v1/jobs/${job.json.id}`, 'GET');
    if (view.status === 'failed' || view.status === 'cancelled') throw new Error(`re-index job ${view.status}: ${JSON.stringify(view)}`);
    if (view.status === 'succeeded') break;
    if (view.phase === 'drop') {
      dropStart ||= performance.now();
      await pair('during');
      dropEnd = performance.now();
    } else {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const jobMs = performance.now() - t0;
  if (healthz.during.length === 0) throw new Error('the drop phase ended before a request was sent in it: use a larger catalog');
  progress('re-index drop: request pairs after the job');
  while (healthz.outside.length < Math.max(OUTSIDE_BEFORE, healthz.during.length)) await pair('outside');
  const sides = (s: { during: number[]; outside: number[] }) => ({ during: latencySummary(s.during), outside: latencySummary(s.outside) });
  return { to, jobMs, dropMs: dropEnd - dropStart, healthz: sides(healthz), retrieve: sides(retrieve) };
}
