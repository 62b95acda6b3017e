/**
 * Where a /v1/retrieve spends its time, for `sidx bench`: the server's Prometheus histogram
 * sidx_request_phase_seconds{route="/v1/retrieve",phase} (parse = request start to handler start, i.e. body parse
 * + validation; encode; beam; candidates; rerank; respond = handler end to response sent, i.e. serialisation),
 * read from GET /metrics before and after a load run: mean ms per phase = sum delta / count delta (fetch, reading
 * the top-k records, too where the server reports it). Servers without
 * that histogram leave it out; the bench then falls back to the timingsMs of the responses (phasesFromTimings).
 */
import type { RetrievePass } from './http.ts';

export const PHASE_METRIC = 'sidx_request_phase_seconds';
export const RETRIEVE_ROUTE = '/v1/retrieve';

/** Cumulative seconds and observations per phase. */
export type PhaseSnapshot = Map<string, { sum: number; count: number }>;

export interface PhaseBreakdown {
  /** "metrics": the server's phase histogram; "timingsMs": the responses' timingsMs (no parse or respond). */
  source: 'metrics' | 'timingsMs';
  /** Requests the means are over. */
  requests: number;
  /** Mean milliseconds per request, by phase. */
  meanMs: Record<string, number>;
}

/** The phase histogram's sums and counts for `route` in a Prometheus text exposition; empty when it is absent. */
export function parsePhases(text: string, route = RETRIEVE_ROUTE): PhaseSnapshot {
  const out: PhaseSnapshot = new Map();
  const line = new RegExp(`^${PHASE_METRIC}_(sum|count)\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  for (const m of text.matchAll(line)) {
    const labels = new Map(Array.from(m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g), (l) => [l[1]!, l[2]!] as const));
    const phase = labels.get('phase');
    if (labels.get('route') !== route || phase === undefined) continue;
    const entry = out.get(phase) ?? { sum: 0, count: 0 };
    entry[m[1] as 'sum' | 'count'] += Number(m[3]);
    out.set(phase, entry);
  }
  return out;
}

/** GET /metrics, parsed for `route`; an empty snapshot when the server has no phase histogram (or no /metrics). */
export async function readPhases(url: string, route = RETRIEVE_ROUTE): Promise<PhaseSnapshot> {
  const res = await fetch(`${url}/metrics`).catch(() => null);
  if (!res || res.status !== 200) return new Map();
  return parsePhases(await res.text(), route);
}

/** Mean ms per phase between two snapshots; undefined when no request was observed in between. */
export function phaseDelta(before: PhaseSnapshot, after: PhaseSnapshot): PhaseBreakdown | undefined {
  const meanMs: Record<string, number> = {};
  let requests = 0;
  for (const [phase, a] of after) {
    const b = before.get(phase) ?? { sum: 0, count: 0 };
    const count = a.count - b.count;
    if (count <= 0) continue;
    meanMs[phase] = (1000 * (a.sum - b.sum)) / count;
    requests = Math.max(requests, count);
  }
  return requests > 0 ? { source: 'metrics', requests, meanMs } : undefined;
}

/** Adds two breakdowns of the same source, weighting the means by their requests. */
export function mergePhases(a: PhaseBreakdown | undefined, b: PhaseBreakdown | undefined): PhaseBreakdown | undefined {
  if (!a || !b) return a ?? b;
  const meanMs: Record<string, number> = {};
  for (const phase of new Set([...Object.keys(a.meanMs), ...Object.keys(b.meanMs)])) {
    meanMs[phase] = ((a.meanMs[phase] ?? 0) * a.requests + (b.meanMs[phase] ?? 0) * b.requests) / (a.requests + b.requests);
  }
  return { source: a.source, requests: a.requests + b.requests, meanMs };
}

/** The fallback: the sequential pass's mean timingsMs (the service's phases; no parse or respond). */
export function phasesFromTimings(pass: RetrievePass): PhaseBreakdown {
  return { source: 'timingsMs', requests: pass.queries, meanMs: { ...pass.serverPhasesMs } };
}
