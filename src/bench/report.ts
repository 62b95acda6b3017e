/** The `sidx bench` report: bench.json's shape and its Markdown rendering (ratios first, then the figures). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BaselineResult } from './baselines.ts';
import type { EncodeBench } from './encode.ts';
import type { RetrievePass, UpsertResult } from './http.ts';
import type { LoadResult } from './load.ts';
import type { ProcessMemory } from './server.ts';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  faiss: string;
  /** 1-minute load average at the start and at the end of the run: a busy machine reads slower. */
  loadAverage: { start: number; end: number };
}

export interface CatalogBench {
  items: number;
  queries: number;
  k: number;
  expand: string;
  generateSeconds: number;
  serverStartMs: { listening: number; ready: number };
  upsert: UpsertResult;
  memory: { afterStart: ProcessMemory; afterUpsert: ProcessMemory; afterLoad: ProcessMemory; bytesPerItem: number; vectorBytes: number };
  retrieve: RetrievePass;
  load: LoadResult[];
  exact: BaselineResult;
  hnsw: BaselineResult | { skipped: string };
  /** Restart with the catalog on disk: time to listening and to ready (FAISS checkpoint load / catch-up). */
  restartMs?: { listening: number; ready: number };
}

export interface BenchReport {
  version: 1;
  startedAt: string;
  command: string;
  machine: MachineInfo;
  model: { id: string; method: string; dim: number; levels: number; codebookSizes: number[]; dir: string };
  data: string;
  encode?: EncodeBench;
  catalogs: CatalogBench[];
}

const f = (v: number | undefined, digits = 3): string => {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toPrecision(digits);
};
const x = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? 'n/a' : `${f(v)}x`);
const mib = (b: number) => `${f(b / 2 ** 20)} MiB`;

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function encodeSection(e: EncodeBench): string {
  const torchNote = 'skipped' in e.torch
    ? `PyTorch baseline skipped: ${e.torch.skipped}.`
    : `PyTorch ${e.torch.version} CPU (${e.torch.threads} threads, BLAS_INFO=${e.torch.blas}, ${e.torch.python}) runs the same model: `
      + `the codebooks read back from encoder.onnx, the same residual assignment and top-M; its codes agree with sidx's on ${f(100 * e.torch.codesAgree, 4)}% of ${e.torch.checkedRows} rows.`;
  return [
    `### Encode (items/s, ${e.threads} intra-op threads everywhere)`,
    '',
    table(['batch', 'sidx pool (worker thread)', 'ORT on the calling thread', 'PyTorch', 'sidx / PyTorch', 'sidx / direct ORT'],
      e.rows.map((r) => [String(r.batch), f(r.sidxPool), f(r.directOrt), f(r.torch), x(r.torch ? r.sidxPool / r.torch : undefined), x(r.sidxPool / r.directOrt)])),
    '',
    torchNote,
  ].join('\n');
}

function catalogSection(c: CatalogBench): string {
  const hnsw = 'skipped' in c.hnsw ? undefined : c.hnsw;
  const c1 = c.load.find((l) => l.connections === 1);
  const exactP50 = c.exact.single.latencyMs.p50;
  const lines: string[] = [];
  lines.push(`### ${c.items.toLocaleString('en-US')} items (${c.queries} queries, k = ${c.k}, expand = ${c.expand})`, '');
  lines.push('Ratios (same run, same queries):', '');
  lines.push(table(['ratio', 'value'], [
    ['sidx server-side p50 / FAISS flat single-query p50', x(c.retrieve.serverMs.p50 / exactP50)],
    ['sidx HTTP QPS at 1 connection / FAISS flat single-query QPS', x(c1 ? c1.qps / c.exact.single.qps : undefined)],
    ...(hnsw ? [
      ['sidx server-side p50 / HNSW32 single-query p50', x(c.retrieve.serverMs.p50 / hnsw.single.latencyMs.p50)],
      ['sidx recall@10 / HNSW32 recall@10', x(c.retrieve.recall / hnsw.recall)],
    ] : []),
    ['server RSS per item / raw vector bytes', x(c.memory.bytesPerItem / c.memory.vectorBytes)],
  ]));
  lines.push('', table(['method', 'recall@10 vs exact', 'single-query p50 ms', 'p99 ms', 'QPS (1 query at a time)', 'scored per query'], [
    ['FAISS Flat (exact, in-process)', '1', f(exactP50), f(c.exact.single.latencyMs.p99), f(c.exact.single.qps), `${c.items.toLocaleString('en-US')} (100%)`],
    hnsw
      ? ['FAISS HNSW32 (in-process, efSearch 16)', f(hnsw.recall), f(hnsw.single.latencyMs.p50), f(hnsw.single.latencyMs.p99), f(hnsw.single.qps), 'graph walk']
      : ['FAISS HNSW32', 'skipped', '', '', '', (c.hnsw as { skipped: string }).skipped],
    ['sidx /v1/retrieve, server-side', f(c.retrieve.recall), f(c.retrieve.serverMs.p50), f(c.retrieve.serverMs.p99), '', `${f(c.retrieve.meanCandidates)} (${f(100 * c.retrieve.catalogFraction)}%)`],
    ...(c1 ? [['sidx /v1/retrieve over HTTP (autocannon, 1 connection)', f(c.retrieve.recall), f(c1.latencyMs.p50), f(c1.latencyMs.p99), f(c1.qps), '']] : []),
  ]));
  lines.push('', `Flat search of all ${c.queries} queries in one call (the BLAS path, a throughput figure): ${f(c.exact.batchedMsPerQuery)} ms per query`
    + ` (single-query timings over ${c.exact.single.queries} queries). `
    + (hnsw ? `HNSW32 build: ${f(hnsw.buildMs / 1000)} s (vs ${f(c.upsert.seconds)} s for sidx's upserts). ` : '')
    + `Queries with no candidate: ${c.retrieve.noCandidateQueries}. Server phases (mean ms): encode ${f(c.retrieve.serverPhasesMs.encode)}, `
    + `candidates ${f(c.retrieve.serverPhasesMs.candidates)}, rerank ${f(c.retrieve.serverPhasesMs.rerank)}.`);
  lines.push('', `/v1/retrieve under load (autocannon, ${c.load[0]?.durationS ?? '?'} s per row; load generator on the same machine):`, '');
  lines.push(table(['connections', 'QPS', 'p50 ms', 'p95 ms', 'p99 ms', 'client errors (timeouts at 10 s)', 'non-2xx'],
    c.load.map((l) => [String(l.connections), f(l.qps), f(l.latencyMs.p50), f(l.latencyMs.p95), f(l.latencyMs.p99), `${l.errors} (${l.timeouts})`, String(l.non2xx)])));
  lines.push('', `Upsert over HTTP (batches of ${c.upsert.batch}, ${c.upsert.concurrency} in flight, base64 embeddings, one LMDB transaction + fsync per batch, FAISS add): `
    + `**${f(c.upsert.itemsPerSecond)} items/s** (${f(c.upsert.seconds)} s; batch p50 ${f(c.upsert.batchLatencyMs.p50)} ms, p99 ${f(c.upsert.batchLatencyMs.p99)} ms).`);
  lines.push('', `Server memory: RSS ${mib(c.memory.afterStart.rssBytes)} after start, ${mib(c.memory.afterUpsert.rssBytes)} after the upserts, `
    + `${mib(c.memory.afterLoad.rssBytes)} after the load runs, peak ${mib(c.memory.afterLoad.peakBytes)} `
    + `(${f(c.memory.bytesPerItem)} bytes per item; a raw vector is ${c.memory.vectorBytes} bytes). `
    + `Start: listening after ${f(c.serverStartMs.listening)} ms, ready after ${f(c.serverStartMs.ready)} ms`
    + (c.restartMs ? `; restart with the catalog: ready after ${f(c.restartMs.ready)} ms.` : '.'));
  return lines.join('\n');
}

export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  return [
    `<!-- generated by sidx bench on ${r.startedAt}; edit the text around the markers, not between them -->`,
    `Command: \`${r.command}\``,
    '',
    `Machine: ${m.cpus} x ${m.cpuModel}, ${f(m.memoryGiB)} GiB, Node ${m.node}, FAISS ${m.faiss}; 1-minute load average ${f(m.loadAverage.start)} at the start, ${f(m.loadAverage.end)} at the end. `
      + `Model: ${r.model.id} (${r.model.method}, ${r.model.levels} x [${r.model.codebookSizes.join(', ')}], ${r.model.dim}-d). Data: ${r.data}.`,
    '',
    ...(r.encode ? [encodeSection(r.encode), ''] : []),
    ...r.catalogs.map(catalogSection).flatMap((s) => [s, '']),
  ].join('\n');
}

/** The Markdown section of a report: its catalog sizes, and its retrieve options unless they are the defaults. */
export function sectionKeyOf(r: BenchReport): string {
  const expand = r.catalogs[0]?.expand ?? 'auto';
  return `sizes=${r.catalogs.map((c) => c.items).join(',')}${expand === 'auto' ? '' : ` expand=${expand.replace(/[^A-Za-z0-9=,. -]/g, '')}`}`;
}

/** Markers around a generated section; `key` tells sections apart (sidx bench uses the catalog sizes). */
export function markers(key: string): { begin: string; end: string } {
  return { begin: `<!-- sidx bench: begin ${key} -->`, end: `<!-- sidx bench: end ${key} -->` };
}

/**
 * Writes `markdown` between the markers for `key` in `file`: replaces that section when present, appends it
 * when the file exists without it, creates the file otherwise.
 */
export function writeMarkdownSection(file: string, key: string, markdown: string): void {
  const { begin, end } = markers(key);
  const block = `${begin}\n${markdown.trimEnd()}\n${end}`;
  if (!existsSync(file)) {
    writeFileSync(file, `${block}\n`);
    return;
  }
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) writeFileSync(file, text.slice(0, a) + block + text.slice(b + end.length));
  else writeFileSync(file, `${text.trimEnd()}\n\n${block}\n`);
}

/** JSON with bigints as strings. */
export function reportJson(r: BenchReport): string {
  return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
}
