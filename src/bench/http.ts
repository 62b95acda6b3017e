/** HTTP clients for the benchmark: bulk upsert through POST /v1/items and a sequential /v1/retrieve pass. */
import { Agent, request } from 'node:http';
import { latencySummary, type LatencySummary } from './stats.ts';

const b64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

export function itemId(i: number): string {
  return `item-${i}`;
}

export interface UpsertResult {
  items: number;
  batch: number;
  concurrency: number;
  seconds: number;
  itemsPerSecond: number;
  /** Per-request latency of the batches. */
  batchLatencyMs: LatencySummary;
}

/**
 * The JSON body `{"items":[{"id":"item-<row>","embedding":"<base64>"}, ...]}` of rows [start, end), the bytes
 * JSON.stringify gives for those objects, written straight into one buffer: the load generator shares the machine
 * with the server, and building the objects, stringifying them and sending them through fetch cost it 27-32 ms of CPU
 * per 1,000 items against 10-12 ms this way in bench/ingest-profile.bench.ts (docs/benchmarks.md, "Where it stands
 * (stop 52)").
 */
export function upsertBody(items: Float32Array, dim: number, start: number, end: number): Buffer {
  const rowBytes = 4 * dim;
  const rows = Buffer.from(items.buffer, items.byteOffset, items.byteLength);
  const out = Buffer.allocUnsafe(16 + (end - start) * (4 * Math.ceil(rowBytes / 3) + 64));
  let at = out.write('{"items":[', 0, 'latin1');
  for (let i = start; i < end; i++) {
    at += out.write(`${i > start ? ',' : ''}{"id":"${itemId(i)}","embedding":"`, at, 'latin1');
    at += out.write(rows.toString('base64', i * rowBytes, (i + 1) * rowBytes), at, 'latin1');
    at += out.write('"}', at, 'latin1');
  }
  at += out.write(']}', at, 'latin1');
  return out.subarray(0, at);
}

/** fetch's limit on an answer that does not come (undici's headers and body timeouts). */
const ANSWER_TIMEOUT_MS = 300_000;

/** POSTs a JSON body to `url` on a kept-alive connection of `agent`; the answer's status and text. */
function postJson(url: URL, body: Buffer, agent: Agent): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(ANSWER_TIMEOUT_MS, () => req.destroy(new Error(`no answer from ${url.href} in ${ANSWER_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Upserts rows [0, n) as items "item-<row>", base64 embeddings, `concurrency` batches in flight (upsertBody). */
export async function upsertAll(url: string, items: Float32Array, n: number, dim: number, batch: number, concurrency: number,
  progress: (done: number) => void): Promise<UpsertResult> {
  const target = new URL(`${url}/v1/items`); // as fetch took it: an IPv6 host or a path prefix kept
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let done = 0;
  const samples: number[] = [];
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const start = next;
      if (start >= n) return;
      const end = Math.min(n, start + batch);
      next = end;
      const body = upsertBody(items, dim, start, end);
      const t = performance.now();
      const res = await postJson(target, body, agent);
      if (res.status !== 200) throw new Error(`upsert of rows ${start}..${end} answered ${res.status}: ${res.text}`);
      samples.push(performance.now() - t);
      done += end - start;
      progress(done);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { items: n, batch, concurrency, seconds, itemsPerSecond: n / seconds, batchLatencyMs: latencySummary(samples) };
}

export function retrieveBodies(queries: Float32Array, q: number, dim: number, extra: Record<string, unknown>): string[] {
  return Array.from({ length: q }, (_, i) => JSON.stringify({ embedding: b64(queries.subarray(i * dim, (i + 1) * dim)), ...extra }));
}

export interface RetrievePass {
  queries: number;
  /** The expansion the server used (the response's "expand"). */
  expand: string;
  recall: number;
  meanCandidates: number;
  catalogFraction: number;
  noCandidateQueries: number;
  /** timingsMs.total reported by the server (encode + candidates + rerank + reads). */
  serverMs: LatencySummary;
  /** Client-side, sequential, one connection. */
  httpMs: LatencySummary;
  /** Mean of every timingsMs field but total (encode, candidates, rerank; beam and fetch where the server has them). */
  serverPhasesMs: Record<string, number>;
}

/** Every query once, sequentially: recall@k against `truth` (row numbers), candidates, server-side timings. */
export async function retrievePass(url: string, bodies: readonly string[], truth: BigInt64Array, k: number, n: number): Promise<RetrievePass> {
  let hits = 0;
  let candidates = 0;
  let empty = 0;
  const server: number[] = [];
  const http: number[] = [];
  const phases: Record<string, number> = {};
  let expand = '';
  for (let i = 0; i < bodies.length; i++) {
    const t = performance.now();
    const res = await fetch(`${url}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[i] });
    const json = (await res.json()) as {
      expand: string; items: { id: string }[]; candidates: { total: number }; timingsMs: Record<string, number> & { total: number };
    };
    http.push(performance.now() - t);
    if (res.status !== 200) throw new Error(`retrieve answered ${res.status}: ${JSON.stringify(json)}`);
    expand ||= json.expand;
    const want = new Set(Array.from(truth.subarray(i * k, (i + 1) * k), (row) => itemId(Number(row))));
    for (const it of json.items) if (want.has(it.id)) hits++;
    candidates += json.candidates.total;
    if (json.candidates.total === 0) empty++;
    server.push(json.timingsMs.total);
    for (const [phase, ms] of Object.entries(json.timingsMs)) if (phase !== 'total') phases[phase] = (phases[phase] ?? 0) + ms;
  }
  const q = bodies.length;
  return {
    queries: q,
    expand,
    recall: hits / (q * k),
    meanCandidates: candidates / q,
    catalogFraction: candidates / q / n,
    noCandidateQueries: empty,
    serverMs: latencySummary(server),
    httpMs: latencySummary(http),
    serverPhasesMs: Object.fromEntries(Object.entries(phases).map(([phase, ms]) => [phase, ms / q])),
  };
}

/**
 * Retrieve-by-SIDs bodies (`{sids, k, rerank: false}`): each query's beam of `beamWidth` generated SIDs, as sidx's
 * own beam produces them (POST /v1/retrieve with the embedding, expand "beam", that beamWidth and rerank false
 * answers them in querySids, best first). querySids leads with the encoder's own SID, one more than the beam where
 * the beam's prefix scores left it out (a bundle's beamNormWeight below 1): the first `beamWidth` are kept.
 */
export async function sidsBodies(url: string, queries: Float32Array, q: number, dim: number, beamWidth: number, k: number):
  Promise<{ bodies: string[]; meanSids: number }> {
  const bodies: string[] = [];
  let sids = 0;
  for (let i = 0; i < q; i++) {
    const body = JSON.stringify({ embedding: b64(queries.subarray(i * dim, (i + 1) * dim)), expand: 'beam', beamWidth, k: 1, rerank: false });
    const res = await fetch(`${url}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const json = (await res.json()) as { querySids: number[][] };
    if (res.status !== 200) throw new Error(`retrieve (beam of ${beamWidth}) answered ${res.status}: ${JSON.stringify(json)}`);
    const generated = json.querySids.slice(0, beamWidth);
    sids += generated.length;
    bodies.push(JSON.stringify({ sids: generated, k, rerank: false }));
  }
  return { bodies, meanSids: sids / q };
}

/**
 * POST /v1/retrieve/batch bodies of `size` queries each, taken from the single-query `bodies` in turn (wrapping
 * around), so that every query is asked as often as in a run over `bodies`: lcm-sized, at least `bodies.length` queries.
 */
export function batchBodies(bodies: readonly string[], size: number): string[] {
  if (!Number.isSafeInteger(size) || size < 1) throw new Error(`batch size must be a positive integer, got ${size}`);
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const count = bodies.length / gcd(bodies.length, size);
  return Array.from({ length: count }, (_, r) =>
    `{"queries":[${Array.from({ length: size }, (_, j) => bodies[(r * size + j) % bodies.length]).join(',')}]}`);
}
