/**
 * Small helpers shared by the standalone benchmark scripts in bench/: timing, Markdown tables, argument parsing; the
 * statistics come from src/bench (the home of `sidx bench`), so every benchmark summarises latencies alike.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { clusteredEmbeddings } from '../src/eval/synthetic.ts';
import { readNpy } from '../src/io/npy.ts';
import { VectorIndex, type Metric } from '../src/vector/vector-index.ts';

export { latencySummary, percentile } from '../src/bench/stats.ts';

export async function timeIt<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v);
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(fmt).join(' | ')} |`);
  return lines.join('\n');
}

export function benchArgs<T extends Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>(options: T) {
  return parseArgs({ args: process.argv.slice(2), options, strict: true }).values;
}

/** A `--env K=V,K2=V2` flag as variables for a child server (a value keeps any '=' after the first). */
export function envPairs(spec: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of spec.split(',').filter(Boolean)) {
    const at = kv.indexOf('=');
    env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return env;
}

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** The `top` functions by self time of a V8 CPU profile, as a Markdown table on stdout. */
export function printTopSelfTime(profile: CpuProfile, top = 25): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(markdownTable(['self ms', 'share', 'function'], [...self].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, us]) => [(us / 1000).toFixed(0), `${((100 * us) / total).toFixed(1)}%`, k])));
}

/**
 * The generalisation proxy: a prefix of `sidx bench`'s catalog (clusteredEmbeddings, 1024 clusters, noise 0.6 around
 * the scientific text embeddings when $SIDX_SHARED_DATA has them and dim is 512), its queries (seed + 1,000,003) and
 * their exact top k by FAISS Flat (item i has label i).
 */
export async function proxyCatalog(o: { n: number; q: number; dim: number; seed: number; k: number; metric: Metric }):
  Promise<{ items: Float32Array; queries: Float32Array; truth: BigInt64Array }> {
  const shared = resolve(process.env.SIDX_SHARED_DATA ?? '../shared/data', 'scientific/text_emb.npy');
  const centres = existsSync(shared) && o.dim === 512 ? (await readNpy(shared)).data : undefined;
  // As src/cli/bench.ts: with fixed centres a prefix of the 100K catalog is this catalog.
  const items = clusteredEmbeddings({ n: o.n, dim: o.dim, seed: o.seed, centres, clusters: 1024, noise: 0.6 });
  const queries = clusteredEmbeddings({ n: o.q, dim: o.dim, seed: o.seed + 1_000_003, centres, clusters: 1024, noise: 0.6 });
  const flat = VectorIndex.create({ dim: o.dim, metric: o.metric, factory: 'Flat' });
  try {
    await flat.addAsync(items, BigInt64Array.from({ length: o.n }, (_, i) => BigInt(i)));
    return { items, queries, truth: (await flat.search(queries, o.k)).labels };
  } finally {
    flat.close();
  }
}
