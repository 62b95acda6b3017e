/**
 * Health verdicts on a tokenization's SID metrics: the warnings `sidx train` prints after every run and `sidx
 * metrics` prints under its table. Each names the level (where there is one) and the flag to change.
 *
 * - Code utilisation: a level that uses fewer than `minUtilisation` (90%) of the codes it could use, i.e. of
 *   min(K, items) (a level cannot use more codes than there are items).
 * - Collisions: the collision rate against what the capacity allows. Under a uniform random assignment of N items
 *   to C = prod(K_l) SIDs the expected number of distinct SIDs is C (1 - (1 - 1/C)^N), hence an expected collision
 *   rate e = 1 - C (1 - (1 - 1/C)^N) / N (about N / 2C when C >> N). Hierarchical quantisers never reach e on real
 *   data (their levels are not independent), so the verdict fires only when the rate exceeds e by more than
 *   `maxExcessCollisions` (0.2: a fifth of the items indistinguishable beyond what the capacity explains).
 */
import type { SidMetrics } from './metrics.ts';

export type HealthMethod = 'rqkmeans' | 'rqvae' | 'vqvae';

export interface HealthContext {
  /** The trainer that produced the SIDs; unknown (e.g. SIDs from a file): only the codebook flags are named. */
  method?: HealthMethod | string;
  /** rqkmeans: whether it ran with --balanced. */
  balanced?: boolean;
}

export interface HealthThresholds {
  minUtilisation: number;
  maxExcessCollisions: number;
}

export const DEFAULT_HEALTH: HealthThresholds = { minUtilisation: 0.9, maxExcessCollisions: 0.2 };

export interface HealthWarning {
  kind: 'utilisation' | 'collisions';
  /** 0-based level (utilisation warnings). */
  level?: number;
  /** The flags the message suggests changing. */
  flags: string[];
  message: string;
}

/** Expected collision rate of n items assigned uniformly at random to prod(codebookSizes) SIDs. */
export function expectedUniformCollisionRate(n: number, codebookSizes: number[]): number {
  const capacity = codebookSizes.reduce((p, k) => p * k, 1);
  if (n <= 1) return 0;
  // distinct = C (1 - (1 - 1/C)^n) = -C expm1(n log1p(-1/C)), accurate in doubles below C = 2^53; beyond, the
  // second-order expansion n - n (n - 1) / 2C (the next term is about n^3 / 6C^2).
  const distinct = capacity >= 2 ** 53 ? n - (n * (n - 1)) / (2 * capacity) : -capacity * Math.expm1(n * Math.log1p(-1 / capacity));
  return Math.max(0, 1 - distinct / n);
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

function utilisationFlags(ctx: HealthContext): string[] {
  switch (ctx.method) {
    case 'rqkmeans':
      return ctx.balanced === true ? ['--codebook-size'] : ['--balanced', '--codebook-size'];
    case 'rqvae':
    case 'vqvae':
      // Dead-code restart is no cure for a short run: usage EMAs start at the k-means counts and decay too slowly
      // to mark a code dead within 150 steps (measured, docs/rqvae.md); more steps are.
      return ['--steps', '--codebook-size'];
    default:
      return ['--codebook-size'];
  }
}

function collisionFlags(ctx: HealthContext): string[] {
  const grow = ['--codebook-size', ...(ctx.method === 'vqvae' ? [] : ['--levels'])];
  if (ctx.method === 'rqkmeans' && ctx.balanced !== true) return ['--balanced', ...grow];
  if (ctx.method === 'rqvae' || ctx.method === 'vqvae') return ['--steps', ...grow];
  return grow;
}

/** The warnings for one tokenization's metrics; empty when it is healthy. */
export function sidHealth(m: SidMetrics, ctx: HealthContext = {}, t: HealthThresholds = DEFAULT_HEALTH): HealthWarning[] {
  const warnings: HealthWarning[] = [];
  for (const l of m.perLevel) {
    const usable = Math.min(l.codebookSize, m.items);
    const share = l.used / usable;
    if (share >= t.minUtilisation) continue;
    const flags = utilisationFlags(ctx);
    warnings.push({
      kind: 'utilisation', level: l.level, flags,
      message: `level ${l.level + 1} uses ${l.used} of ${usable} codes (${pct(share)}, below ${pct(t.minUtilisation)}): `
        + `change ${flags.join(' or ')}`,
    });
  }
  const expected = expectedUniformCollisionRate(m.items, m.codebookSizes);
  if (m.collisionRate - expected > t.maxExcessCollisions) {
    const flags = collisionFlags(ctx);
    const capacity = m.codebookSizes.every((k) => k === m.codebookSizes[0])
      ? `${m.codebookSizes.length} x ${m.codebookSizes[0]}` : m.codebookSizes.join(' / ');
    warnings.push({
      kind: 'collisions', flags,
      message: `collision rate ${pct(m.collisionRate)} (${m.distinctSids} distinct SIDs for ${m.items} items) is far above `
        + `the ${pct(expected)} that ${capacity} codes allow: change ${flags.join(' or ')}`,
    });
  }
  return warnings;
}

/** The context of a bundle, from its manifest's method and training provenance. */
export function healthContextOf(manifest: { method: string; training?: Record<string, unknown> }): HealthContext {
  const balanced = manifest.training?.balanced;
  return { method: manifest.method, ...(balanced === undefined ? {} : { balanced: balanced !== false }) };
}

/** The warnings as lines, each prefixed (e.g. "sidx train: warning: "). */
export function formatHealth(warnings: HealthWarning[], prefix: string): string[] {
  return warnings.map((w) => `${prefix}${w.message}`);
}
