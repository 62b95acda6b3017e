/**
 * Small helpers shared by the standalone benchmark scripts in bench/: timing, Markdown tables, argument parsing; the
 * statistics come from src/bench (the home of `sidx bench`), so every benchmark summarises latencies alike.
 */
import { parseArgs } from 'node:util';

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
