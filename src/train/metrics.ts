/**
 * SID quality metrics: per-level code usage, full-SID collisions and balance, reconstruction error; and their
 * rendering as Markdown tables (readable in a terminal too, columns are padded).
 */
import { SidxError } from '../errors.ts';
import { assertCodebookSizes } from '../sid/codec.ts';
import { SidCounter } from '../sid/collisions.ts';

export interface LevelMetrics {
  /** 0-based level. */
  level: number;
  codebookSize: number;
  /** Distinct codes used at this level. */
  used: number;
  /** used / codebookSize. */
  utilisation: number;
  /** Shannon entropy of the level's code distribution in nats (natural log). */
  entropy: number;
  /** The same entropy in bits (log2); at most log2(codebookSize). */
  entropyBits: number;
  /** exp(entropy): the number of equally used codes with the same entropy. */
  perplexity: number;
}

export interface SidMetrics {
  items: number;
  codebookSizes: number[];
  perLevel: LevelMetrics[];
  /** Distinct full SIDs (occupied SIDs). */
  distinctSids: number;
  /** (items − distinctSids) / items: the share of items that cannot be told apart by SID alone. */
  collisionRate: number;
  maxItemsPerSid: number;
  /** items / distinctSids, i.e. the mean over occupied SIDs. */
  meanItemsPerSid: number;
  /** Gini coefficient of items per occupied SID (FORGE's definition): 0 = perfectly even. */
  gini: number;
  /** Σ‖x − x̂‖² / Σ‖x‖² over all items; present only when inputs and reconstructions were given. */
  reconstructionError?: number;
}

export interface SidMetricsOptions {
  /** n × dim original embeddings (or latents). */
  inputs?: Float32Array;
  /** n × dim reconstructions of `inputs` from the SIDs. */
  reconstructions?: Float32Array;
  /** Defaults to inputs.length / n. */
  dim?: number;
}

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

/** Metrics of n SIDs given as n × L codes (row-major) with codebook sizes per level. */
export function sidQualityMetrics(
  codes: Int32Array,
  n: number,
  codebookSizes: number[],
  opts: SidMetricsOptions = {},
): SidMetrics {
  assertCodebookSizes(codebookSizes);
  const levels = codebookSizes.length;
  if (!Number.isInteger(n) || n < 1) throw invalid(`n must be a positive integer, got ${n}`, 'n');
  if (!(codes instanceof Int32Array) || codes.length !== n * levels) {
    throw invalid(`codes must be an Int32Array of n × levels = ${n} × ${levels} values, got ${codes.length}`, 'codes');
  }

  const perLevel: LevelMetrics[] = [];
  for (let l = 0; l < levels; l++) perLevel.push(levelMetrics(codes, n, levels, l, codebookSizes[l]));

  const sids = new SidCounter(levels, n);
  for (let i = 0; i < n; i++) sids.add(codes, i * levels);
  const counts = sids.counts();
  let maxItemsPerSid = 0;
  for (let s = 0; s < counts.length; s++) if (counts[s] > maxItemsPerSid) maxItemsPerSid = counts[s];

  const metrics: SidMetrics = {
    items: n,
    codebookSizes: [...codebookSizes],
    perLevel,
    distinctSids: sids.size,
    collisionRate: (n - sids.size) / n,
    maxItemsPerSid,
    meanItemsPerSid: n / sids.size,
    gini: giniOfCounts(counts),
  };
  const error = relativeReconstructionError(n, opts);
  if (error !== undefined) metrics.reconstructionError = error;
  return metrics;
}

function levelMetrics(codes: Int32Array, n: number, levels: number, l: number, k: number): LevelMetrics {
  const histogram = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const c = codes[i * levels + l];
    if (!(c >= 0 && c < k)) {
      throw invalid(`code ${c} of item ${i} at level ${l} is outside the codebook 0..${k - 1}`, `codes[${i * levels + l}]`);
    }
    histogram[c]++;
  }
  let used = 0;
  let entropy = 0;
  for (let c = 0; c < k; c++) {
    const h = histogram[c];
    if (h === 0) continue;
    used++;
    const p = h / n;
    entropy -= p * Math.log(p);
  }
  entropy = Math.max(0, entropy); // -0 and round-off below zero when one code holds everything
  return { level: l, codebookSize: k, used, utilisation: used / k, entropy, entropyBits: entropy / Math.LN2, perplexity: Math.exp(entropy) };
}

/**
 * Gini coefficient of the counts x_1 <= ... <= x_N (sorted ascending, N = occupied SIDs):
 *   G = Σ_i (2i − N − 1) x_i / (N Σ_i x_i),   i = 1..N
 * FORGE (al_sid, SID_generation/scripts/gini_coefficient.md) computes the same value as
 * (N + 1)/N − 2 Σ_i x_i (N + 1 − i) / (N Σ x), from the frequency of each count. So do we: counts are small
 * integers, so grouping SIDs by count avoids a sort; a group of m SIDs with count x at ascending ranks
 * b+1..b+m contributes x Σ_{i=b+1}^{b+m} (2i − N − 1) = x m (2b + m − N).
 */
export function giniOfCounts(counts: Int32Array): number {
  const groups = counts.length;
  if (groups === 0) return 0;
  let max = 0;
  for (let s = 0; s < groups; s++) if (counts[s] > max) max = counts[s];
  const frequency = new Float64Array(max + 1);
  let total = 0;
  for (let s = 0; s < groups; s++) {
    if (counts[s] < 0) throw invalid(`count ${counts[s]} is negative`, `counts[${s}]`);
    frequency[counts[s]]++;
    total += counts[s];
  }
  if (total === 0) return 0;
  let weighted = 0;
  let before = frequency[0]; // empty groups take the lowest ranks and add nothing themselves
  for (let x = 1; x <= max; x++) {
    const m = frequency[x];
    if (m === 0) continue;
    weighted += x * m * (2 * before + m - groups);
    before += m;
  }
  return weighted / (groups * total);
}

function relativeReconstructionError(n: number, opts: SidMetricsOptions): number | undefined {
  const { inputs, reconstructions } = opts;
  if (inputs === undefined && reconstructions === undefined) return undefined;
  if (inputs === undefined || reconstructions === undefined) {
    throw invalid('inputs and reconstructions must be given together', inputs === undefined ? 'inputs' : 'reconstructions');
  }
  const dim = opts.dim ?? inputs.length / n;
  if (!Number.isInteger(dim) || dim < 1 || inputs.length !== n * dim) {
    throw invalid(`inputs must hold n × dim values, got ${inputs.length} for n=${n}`, 'inputs');
  }
  if (reconstructions.length !== inputs.length) {
    throw invalid(`reconstructions has ${reconstructions.length} values, inputs ${inputs.length}`, 'reconstructions');
  }
  let error = 0;
  let norm = 0;
  for (let k = 0; k < inputs.length; k++) {
    const x = inputs[k];
    const d = x - reconstructions[k];
    error += d * d;
    norm += x * x;
  }
  if (!Number.isFinite(error) || !Number.isFinite(norm)) throw invalid('inputs or reconstructions contain NaN or Infinity', 'inputs');
  if (norm === 0) throw invalid('inputs are all zero: relative error is undefined', 'inputs');
  return error / norm;
}

// ---- tables ----

const fixed = (digits: number) => (v: number) => v.toFixed(digits);
const percent = (v: number) => `${(100 * v).toFixed(2)}%`;
const integer = (v: number) => String(v);

type Row = [label: string, cell: (m: SidMetrics) => string | undefined];

function summaryRows(): Row[] {
  return [
    ['items', (m) => integer(m.items)],
    ['levels × codebook', (m) => shape(m.codebookSizes)],
    ['distinct SIDs', (m) => integer(m.distinctSids)],
    ['collision rate', (m) => percent(m.collisionRate)],
    ['max items / SID', (m) => integer(m.maxItemsPerSid)],
    ['mean items / occupied SID', (m) => fixed(4)(m.meanItemsPerSid)],
    ['Gini (items / occupied SID)', (m) => fixed(4)(m.gini)],
    ['reconstruction error (relative MSE)', (m) => (m.reconstructionError === undefined ? undefined : fixed(4)(m.reconstructionError))],
  ];
}

function levelRows(levels: number): Row[] {
  const rows: Row[] = [];
  for (let l = 0; l < levels; l++) {
    const at = (m: SidMetrics) => m.perLevel[l];
    rows.push([`L${l + 1} used / K`, (m) => (at(m) ? `${at(m).used} / ${at(m).codebookSize} (${percent(at(m).utilisation)})` : undefined)]);
    rows.push([`L${l + 1} perplexity`, (m) => (at(m) ? fixed(1)(at(m).perplexity) : undefined)]);
    rows.push([`L${l + 1} entropy (bits)`, (m) => (at(m) ? fixed(3)(at(m).entropyBits) : undefined)]);
  }
  return rows;
}

function shape(sizes: number[]): string {
  return sizes.every((k) => k === sizes[0]) ? `${sizes.length} × ${sizes[0]}` : sizes.join(' / ');
}

/** A Markdown table with one column per labelled result; cells a result lacks (e.g. a 4th level) show "—". */
export function compareMetricsTable(rows: { label: string; metrics: SidMetrics }[]): string {
  if (rows.length === 0) throw invalid('nothing to compare', 'rows');
  const maxLevels = Math.max(...rows.map((r) => r.metrics.perLevel.length));
  const lines: string[][] = [];
  for (const [label, cell] of [...summaryRows(), ...levelRows(maxLevels)]) {
    const cells = rows.map((r) => cell(r.metrics));
    if (cells.every((c) => c === undefined)) continue;
    lines.push([label, ...cells.map((c) => c ?? '—')]);
  }
  const header = ['metric', ...rows.map((r) => r.label)];
  const widths = header.map((h, j) => Math.max(h.length, 3, ...lines.map((line) => line[j].length)));
  const render = (cells: string[]) => `| ${cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join(' | ')} |`;
  const rule = `|${widths.map((w, j) => (j === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [render(header), rule, ...lines.map(render)].join('\n');
}

/** A Markdown table of one result. */
export function formatMetricsTable(metrics: SidMetrics, label = 'value'): string {
  return compareMetricsTable([{ label, metrics }]);
}
