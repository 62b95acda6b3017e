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
