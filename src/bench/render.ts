/** The Markdown of a `sidx bench` report: per catalog, the targets as ratios first, then the figures behind them. */
import type { EncodeBench } from './encode.ts';
import type { UpsertResult } from './http.ts';
import { mergePhases, type PhaseBreakdown } from './phases.ts';
import type { BenchReport, CatalogBench, SystemName } from './report.ts';
import type { LatencySummary } from './stats.ts';
import { loadSummary, targetRows } from './targets.ts';

/** A figure for the report: whole numbers from 100 on (grouped), else `digits` significant digits; n/a when missing. */
export const f = (v: number | undefined, digits = 3): string => {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  const rounded = v.toPrecision(digits);
  // toPrecision writes an exponent where rounding reaches 10^digits (99.6 at 2 digits: "1.0e+2")
  if (Math.abs(v) >= 100 || rounded.includes('e')) return Math.round(v).toLocaleString('en-US');
  return rounded;
};
const x = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? 'n/a' : `${f(v)}x`);
const mib = (b: number) => `${f(b / 2 ** 20)} MiB`;

export function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function encodeSection(e: EncodeBench): string {
  const torchNote = 'skipped' in e.torch
    ? `PyTorch baseline skipped: ${e.torch.skipped}.`
    : `PyTorch ${e.torch.version} CPU (${e.torch.threads} threads, BLAS_INFO=${e.torch.blas}, ${e.torch.python}) runs the same model: `
      + `the codebooks (and encoder MLP) read back from encoder.onnx, the same residual assignment and top-M; its codes agree with sidx's on ${f(100 * e.torch.codesAgree, 4)}% of ${e.torch.checkedRows} rows.`;
  return [
    `#### Encode (${e.model ? `${e.model}; ` : ''}items/s, ${e.threads} threads everywhere; sidx pool: ${e.workers ?? 1} worker(s) sharing them)`,
    '',
    table(['batch', 'sidx pool (worker thread)', 'ORT on the calling thread', 'PyTorch', 'sidx / PyTorch', 'sidx / direct ORT'],
      e.rows.map((r) => [String(r.batch), f(r.sidxPool), f(r.directOrt), f(r.torch), x(r.torch ? r.sidxPool / r.torch : undefined), x(r.sidxPool / r.directOrt)])),
    '',
    torchNote,
  ].join('\n');
}

export const PHASE_ORDER = ['parse', 'encode', 'beam', 'candidates', 'rerank', 'fetch', 'respond'];

function phaseRow(label: string, p: PhaseBreakdown): string[] {
  const cols = PHASE_ORDER.map((ph) => f(p.meanMs[ph]));
  const sum = Object.values(p.meanMs).reduce((s, v) => s + v, 0);
  const source = p.source === 'metrics' ? `/metrics, ${p.requests.toLocaleString('en-US')} requests` : `responses' timingsMs (${p.requests} sequential requests; no parse or respond)`;
  return [label, ...cols, f(sum), source];
}

const ingest = (label: string, u: UpsertResult) =>
  [label, f(u.itemsPerSecond), f(u.seconds), f(u.batchLatencyMs.p50), f(u.batchLatencyMs.p99), f(u.batchLatencyMs.max)];

function catalogSection(r: BenchReport, c: CatalogBench): string {
  const hnsw = 'skipped' in c.hnsw ? undefined : c.hnsw;
  const conns = [...new Set(c.load.map((l) => l.connections))].sort((a, b) => a - b);
  const baseline = Object.fromEntries((r.baseline?.recall ?? []).filter((b) => b.items === c.items).map((b) => [b.system, b.recall]));
  const lines: string[] = [];
  const names: Record<SystemName, string> = {
    sidx: `sidx /v1/retrieve (expand ${c.retrieve.expand}${c.options === 'server default' ? ', the default' : `; ${c.options}`})`,
    'sidx-sids': `sidx /v1/retrieve by sids (beam of ${c.sids.beamWidth}, no rerank)`,
    hnsw: hnsw ? `HNSW peer (usearch ${hnsw.version}, ${hnsw.metric}, connectivity ${hnsw.connectivity}${addedOn(hnsw.addThreads)}, ef ${hnsw.tuning.expansionSearch})` : 'HNSW peer',
    bare: 'bare Fastify route (parses the body)',
    'sidx-batch': `sidx /v1/retrieve/batch (${c.batch ?? '?'} default queries per request)`,
    'sidx-sids-batch': `sidx /v1/retrieve/batch (${c.batch ?? '?'} sids queries per request)`,
    'bare-batch': `bare Fastify route parsing the default queries' batch bodies`,
  };
  lines.push(`#### ${c.items.toLocaleString('en-US')} items, ${r.model.id} (${c.queries} queries, k = ${c.k}, ${c.rounds} round(s) of ${c.load[0]?.durationS ?? '?'} s per load run)`, '');
  lines.push('Targets (issue 10), as ratios of this run:', '');
  lines.push(table(['target', 'measured', 'ratio', 'needs', ''], targetRows(c, r.machine.cpus, baseline).map((t) =>
    [t.target + (t.note ? ` (${t.note})` : ''), t.measured, x(t.ratio), `${t.kind === 'min' ? '≥' : '≤'} ${t.bound}x`, t.meets ? 'meets' : 'misses'])));
  lines.push('', `Same bodies, same catalog; every system its own HTTP server on loopback, under load one at a time (autocannon in a worker thread of the bench process). QPS (mean over rounds) and client-side p50 / p99 ms (worst round):`, '');
  const systems = (['sidx', 'sidx-sids', 'hnsw', 'bare'] as SystemName[]).filter((s) => c.load.some((l) => l.system === s));
  const recall: Partial<Record<SystemName, number>> = { sidx: c.retrieve.recall, 'sidx-sids': c.sids.retrieve.recall, ...(hnsw ? { hnsw: hnsw.tuning.recall } : {}) };
  lines.push(table(['system', 'recall@10 vs exact', ...conns.map((n) => `QPS @${n}`), ...conns.map((n) => `p50 / p99 @${n}`), 'non-2xx / errors'],
    systems.map((s) => {
      const sums = conns.map((n) => loadSummary(c.load, s, n));
      return [names[s], f(recall[s]), ...sums.map((m) => f(m?.qps)), ...sums.map((m) => (m ? `${f(m.p50)} / ${f(m.p99)}` : 'n/a')),
        `${sums.reduce((a, m) => a + (m?.non2xx ?? 0), 0)} / ${sums.reduce((a, m) => a + (m?.errors ?? 0), 0)}`];
    })));
  if (c.load.some((l) => l.cpu)) {
    lines.push('', 'CPU per answered request, ms (mean over rounds): the server process, every thread / the load generator (the bench process) / the machine\'s busy share. '
      + 'A server\'s CPU per request is its cost whatever the client; its QPS is also bound by the load generator, which shares the cores:', '');
    lines.push(table(['system', ...conns.map((n) => `@${n}`)], systems.map((s) => [names[s], ...conns.map((n) => {
      const cpu = loadSummary(c.load, s, n)?.cpu;
      return cpu ? `${f(cpu.serverMsPerRequest)} / ${f(cpu.loadGeneratorMsPerRequest)} / ${f(100 * cpu.machineBusy, 2)}%` : 'n/a';
    })])));
  }
  if (c.batch) lines.push('', ...batchSection(c, c.batch, conns, names));
  const chunked = (c.exact.chunks ?? 1) > 1 ? ` (searched as ${c.exact.chunks} flat indexes; single-query timings over the first ${f(c.exact.singleRows)} rows)` : '';
  lines.push('', `Exact FAISS Flat in-process (the ground truth${chunked}): ${f(c.exact.single.qps)} single queries/s, p50 ${f(c.exact.single.latencyMs.p50)} ms. `
    + `sidx sequential pass: server-side (timingsMs.total) p50 ${f(c.retrieve.serverMs.p50)} ms, p99 ${f(c.retrieve.serverMs.p99)} ms, `
    + `${f(c.retrieve.meanCandidates)} candidates per query (${f(100 * c.retrieve.catalogFraction)}% of the catalog); sids mode ${f(c.sids.retrieve.serverMs.p50)} ms p50, `
    + `${f(c.sids.meanSids)} SIDs per body, from ${c.sids.derivedFrom}.`);
  if (hnsw) {
    lines.push('', `HNSW peer ef tuning (recall@${c.k} on the same bodies over HTTP, target sidx's ${f(hnsw.tuning.target, 4)}): `
      + [...hnsw.tuning.tried].sort((a, b) => a.expansionSearch - b.expansionSearch).map((t) => `ef ${t.expansionSearch}: ${f(t.recall, 4)}`).join(', ')
      + (hnsw.tuning.reached ? `; ef ${hnsw.tuning.expansionSearch} kept.` : `; not reached, ef ${hnsw.tuning.expansionSearch} kept.`));
  }
  lines.push('', 'Where a sidx request spends its time (mean ms per request, by load run; under load, a phase includes its waits: '
    + 'the encoder queue for encode and beam, the event loop for parse and respond):', '');
  const phaseRows = (['sidx', 'sidx-sids'] as const).flatMap((mode) => {
    const byConn = conns.map((n) => [n, c.load.filter((l) => l.system === mode && l.connections === n).reduce<PhaseBreakdown | undefined>((m, l) => mergePhases(m, l.phases), undefined)] as const);
    return byConn.every(([, p]) => p === undefined)
      ? [phaseRow(`${names[mode]}, all runs`, c.phases[mode])]
      : byConn.filter(([, p]) => p !== undefined).map(([n, p]) => phaseRow(`${names[mode]}, ${n} connection(s)`, p!));
  });
  lines.push(table(['mode', ...PHASE_ORDER, 'sum', 'source'], phaseRows));
  lines.push('', `Ingest over HTTP (JSON bodies of ${c.upsert.batch} base64 embeddings):`, '');
  lines.push(table(['system', 'items/s', 'seconds', 'batch p50 ms', 'p99 ms', 'max ms'],
    [ingest(`sidx POST /v1/items, ${c.upsert.concurrency} in flight`, c.upsert),
      ...(hnsw ? [ingest(`HNSW peer POST /v1/items, ${hnsw.upsert.concurrency} in flight (the same order in every run)`, hnsw.upsert)] : [])]));
  lines.push('', ('skipped' in c.bulkIndex ? `\`sidx index\` bulk load: skipped (${c.bulkIndex.skipped}).`
    : `\`sidx index\` bulk load of a .npy into a fresh data directory (batches of ${c.bulkIndex.batch}): **${f(c.bulkIndex.itemsPerSecond)} items/s** as it reports; the process took ${f(c.bulkIndex.wallSeconds)} s from spawn to exit.`)
    + ` sidx server RSS: ${mib(c.memory.afterStart.rssBytes)} after start, ${mib(c.memory.afterUpsert.rssBytes)} after the upserts `
    + `(${x(c.memory.afterUpsert.rssBytes / c.memory.rawVectorBytes)} the raw float32 vectors, ${mib(c.memory.rawVectorBytes)}; ${f(c.memory.bytesPerItem)} bytes per item added), `
    + `${mib(c.memory.afterLoad.rssBytes)} after the load runs` + (hnsw ? `; HNSW peer ${mib(hnsw.memoryAfterUpsert.rssBytes)} after its ingest` : '')
    + `. Start: ready after ${f(c.serverStartMs.ready)} ms; restart with the catalog on disk: ready after ${f(c.restartMs.ready)} ms.`
    + (c.layouts ? ` Codes laid out in SID order by the server (vectors.layout): ${c.layouts.length} time(s)${c.layouts.length > 0 ? `, the last ${c.layouts.at(-1)}` : ''}.` : ''));
  const drop = c.reindexDrop;
  if (drop) {
    const side = (s: LatencySummary) => `p50 ${f(s.p50)} / p99 ${f(s.p99)} ms (n=${s.n})`;
    lines.push('', `Re-index to ${drop.to} after the restart (job ${f(drop.jobMs / 1000)} s, drop phase ~${f(drop.dropMs / 1000)} s), requests one after another: `
      + `/healthz during the drop ${side(drop.healthz.during)}, outside ${side(drop.healthz.outside)}; `
      + `/v1/retrieve during ${side(drop.retrieve.during)}, outside ${side(drop.retrieve.outside)}.`);
  }
  return lines.join('\n');
}

export function renderMarkdown(r: BenchReport): string {
  if ((r.version as number) !== 2) throw new Error(`bench report version ${String(r.version)}: only version 2 reports are rendered (earlier ones are quoted in docs/benchmarks.md)`);
  const m = r.machine;
  return [
    `<!-- generated by sidx bench on ${r.startedAt}; edit the text around the markers, not between them -->`,
    `Command: \`${r.command}\``,
    '',
    `Machine: ${m.cpus} x ${m.cpuModel}, ${f(m.memoryGiB)} GiB, Node ${m.node}, FAISS ${m.faiss}; 1-minute load average ${f(m.loadAverage.start)} at the start, ${f(m.loadAverage.end)} at the end. `
      + `Model: ${r.model.id} (${r.model.method}, ${r.model.metric}, ${r.model.levels} x [${r.model.codebookSizes.join(', ')}], ${r.model.dim}-d). Data: ${r.data}.`
      + (r.baseline ? ` Recall compared with ${r.baseline.file}.` : ''),
    '',
    ...(r.encode ? [encodeSection(r.encode), ''] : []),
    ...r.catalogs.map((c) => catalogSection(r, c)).flatMap((s) => [s, '']),
  ].join('\n');
}

/** How the peer added its batches, for its name (nothing for reports from before --hnsw-add-threads). */
function addedOn(threads: number | undefined): string {
  if (threads === undefined) return '';
  return `, added on ${threads === 0 ? 'every core' : `${threads} thread${threads === 1 ? '' : 's'}`}`;
}

/**
 * The batch systems: queries/s (requests/s) per connection count, server CPU per query, and queries/s over the
 * single-query system's QPS, over the bare route's requests/s (one body each), and over the bare route's queries/s
 * when it parses the same batch bodies.
 */
function batchSection(c: CatalogBench, size: number, conns: readonly number[], names: Record<SystemName, string>): string[] {
  const pairs = ([['sidx-batch', 'sidx'], ['sidx-sids-batch', 'sidx-sids'], ['bare-batch', 'bare']] as const).filter(([s]) => c.load.some((l) => l.system === s));
  if (pairs.length === 0) return [];
  const rows = pairs.flatMap(([s, single]) => conns.map((n) => {
    const [batch, one, bare, bareBatch] = ([s, single, 'bare', 'bare-batch'] as const).map((name) => loadSummary(c.load, name, n));
    const perSecond = (batch?.qps ?? Number.NaN) * size;
    const cpu = batch?.cpu;
    return [`${names[s]}, ${n} connection(s)`, f(perSecond), f(batch?.qps), cpu ? f(cpu.serverMsPerRequest / size) : 'n/a',
      x(perSecond / (one?.qps ?? Number.NaN)), x(perSecond / (bare?.qps ?? Number.NaN)), x(perSecond / ((bareBatch?.qps ?? Number.NaN) * size))];
  }));
  return [`POST /v1/retrieve/batch, ${size} of the same queries per request (not an issue 10 target: its ratios are per request of /v1/retrieve). `
    + 'Queries/s over the single-query QPS of the same mode, over the bare route\'s QPS with one body per request, and over its queries/s when it parses the batch bodies:', '',
  table(['system', 'queries/s', 'requests/s', 'server CPU ms per query', '/ single-query QPS', '/ bare QPS', '/ bare on the batch bodies'], rows)];
}
