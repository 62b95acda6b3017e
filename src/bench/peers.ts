/**
 * The peer servers of `sidx bench` (src/bench/peer-server.ts, each its own process on loopback): a usearch HNSW
 * service and a bare Fastify route. Also the tuning of the HNSW peer's search expansion (ef) to sidx's recall, over
 * HTTP, on the same bodies and the same ground truth.
 */
import { repoPath } from '../paths.ts';
import type { Metric } from '../vector/vector-index.ts';
import { itemId } from './http.ts';
import { startChildServer, type BenchServer } from './server.ts';
import { latencySummary, type LatencySummary } from './stats.ts';

const PEER_SCRIPT = repoPath('src/bench/peer-server.ts');

/** Search expansions tried, in order, until the recall target is met. */
export const EXPANSION_STEPS = [10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512, 768, 1024];

export interface PeerOptions {
  dim: number;
  metric: Metric;
  connectivity: number;
  addThreads: number;
  bodyLimitBytes: number;
  workDir: string;
}

/** `nodeArgs`: node flags for the peer (e.g. --perf-basic-prof to profile it as bench/serve-perf.sh does sidx). */
export function startPeer(kind: 'hnsw' | 'bare', o: PeerOptions, nodeArgs: readonly string[] = []): Promise<BenchServer> {
  return startChildServer(`${kind} peer`, ['--expose-gc', ...nodeArgs, '--import', 'tsx', PEER_SCRIPT, '--kind', kind, '--dim', String(o.dim), '--metric', o.metric,
    '--connectivity', String(o.connectivity), '--add-threads', String(o.addThreads), '--body-limit', String(o.bodyLimitBytes), '--work-dir', o.workDir], {});
}

/** POSTs a JSON body to a peer (or sidx); the parsed answer, or an error naming the path and the status. */
export async function post(url: string, path: string, body: string): Promise<unknown> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Every body once, sequentially: recall@k of the answers' ids against `truth` (row numbers), client latency. */
export async function recallPass(url: string, bodies: readonly string[], truth: BigInt64Array, k: number): Promise<{ recall: number; httpMs: LatencySummary }> {
  let hits = 0;
  const http: number[] = [];
  for (let i = 0; i < bodies.length; i++) {
    const t = performance.now();
    const json = (await post(url, '/v1/retrieve', bodies[i]!)) as { items: { id: string }[] };
    http.push(performance.now() - t);
    const want = new Set(Array.from(truth.subarray(i * k, (i + 1) * k), (row) => itemId(Number(row))));
    for (const it of json.items) if (want.has(it.id)) hits++;
  }
  return { recall: hits / (bodies.length * k), httpMs: latencySummary(http) };
}

export interface ExpansionTuning {
  /** The recall the peer had to reach (sidx's, same bodies). */
  target: number;
  expansionSearch: number;
  recall: number;
  /** Whether some step reached the target (else the largest step is kept). */
  reached: boolean;
  tried: Array<{ expansionSearch: number; recall: number }>;
}

/**
 * The smallest search expansion whose recall reaches `target`: up EXPANSION_STEPS (from k) to the first step that
 * reaches it, then a bisection of the integers between it and the step before, so the peer is compared at the
 * expansion that just reaches sidx's recall, not at the next coarse step (recall is taken as non-decreasing in ef).
 */
export async function smallestExpansion(k: number, target: number, measure: (ef: number) => Promise<number>): Promise<ExpansionTuning> {
  const tried: ExpansionTuning['tried'] = [];
  const attempt = async (ef: number) => {
    const recall = await measure(ef);
    tried.push({ expansionSearch: ef, recall });
    return recall;
  };
  let below = 0;
  for (const ef of EXPANSION_STEPS.filter((s) => s >= k)) {
    let recall = await attempt(ef);
    if (recall < target) {
      below = ef;
      continue;
    }
    let hi = ef;
    while (below > 0 && hi - below > 1) {
      const mid = (below + hi) >> 1;
      const r = await attempt(mid);
      if (r >= target) {
        hi = mid;
        recall = r;
      } else {
        below = mid;
      }
    }
    return { target, expansionSearch: hi, recall, reached: true, tried };
  }
  const last = tried[tried.length - 1]!;
  return { target, expansionSearch: last.expansionSearch, recall: last.recall, reached: false, tried };
}

/** Tunes the HNSW peer's ef to the smallest that reaches `target` recall@k on `bodies` (smallestExpansion). */
export async function tuneExpansion(url: string, bodies: readonly string[], truth: BigInt64Array, k: number, target: number,
  progress: (msg: string) => void): Promise<ExpansionTuning> {
  const tuning = await smallestExpansion(k, target, async (ef) => {
    await post(url, '/admin/expansion', JSON.stringify({ expansionSearch: ef }));
    const { recall } = await recallPass(url, bodies, truth, k);
    progress(`HNSW peer: ef ${ef}, recall@${k} ${recall.toFixed(4)} (target ${target.toFixed(4)})`);
    return recall;
  });
  await post(url, '/admin/expansion', JSON.stringify({ expansionSearch: tuning.expansionSearch }));
  return tuning;
}
