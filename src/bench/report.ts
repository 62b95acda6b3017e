/**
 * The `sidx bench` report: bench.json's shape (version 2: sidx beside the HNSW peer and the bare route), its section
 * key and the Markdown file it is written into. src/bench/render.ts renders it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { BaselineResult } from './baselines.ts';
import type { BulkLoadResult } from './bulk-load.ts';
import type { EncodeBench } from './encode.ts';
import type { RetrievePass, UpsertResult } from './http.ts';
import type { LoadResult } from './load.ts';
import type { ExpansionTuning } from './peers.ts';
import type { PhaseBreakdown } from './phases.ts';
import type { ReindexDropBench } from './reindex-drop.ts';
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

/**
 * The systems under load: sidx (the default expansion), sidx retrieving by generated SIDs, the two peers; with
 * --batch, the same queries several to a request of POST /v1/retrieve/batch (both sidx modes) and the bare route
 * parsing those batch bodies.
 */
export type SystemName = 'sidx' | 'sidx-sids' | 'hnsw' | 'bare' | 'sidx-batch' | 'sidx-sids-batch' | 'bare-batch';

export interface LoadRun extends LoadResult {
  system: SystemName;
  round: number;
  /** Queries per request (a batch system's batch size); absent: one. */
  queriesPerRequest?: number;
  /** sidx only: the server's phase histogram over this run (absent when the server has none). */
  phases?: PhaseBreakdown;
  /** Where the run's CPU went (Linux /proc; absent elsewhere): see LoadCpu. */
  cpu?: LoadCpu;
}

/**
 * The CPU a load run cost, per answered request: the server process's (every thread), the load generator's (the bench
 * process's while autocannon ran in its worker thread; the main thread only waits), and the share of the machine busy meanwhile.
 * A server's CPU per request is its cost whatever the client; QPS is also bound by the load generator, which shares
 * the machine's cores with the server.
 */
export interface LoadCpu {
  serverMsPerRequest: number;
  loadGeneratorMsPerRequest: number;
  machineBusy: number;
}

export interface PeerBench {
  kind: 'usearch HNSW';
  version: string;
  metric: string;
  connectivity: number;
  /** Threads the peer added each batch with (0: every core); absent in reports before stop 41 (every core). */
  addThreads?: number;
  upsert: UpsertResult;
  memoryAfterUpsert: ProcessMemory;
  tuning: ExpansionTuning;
}

export interface CatalogBench {
  items: number;
  queries: number;
  k: number;
  /** The retrieve options sent besides the embedding and k ("server default" when none). */
  options: string;
  generateSeconds: number;
  serverStartMs: { listening: number; ready: number };
  upsert: UpsertResult;
  memory: { afterStart: ProcessMemory; afterUpsert: ProcessMemory; afterLoad: ProcessMemory; bytesPerItem: number; vectorBytes: number; rawVectorBytes: number };
  /** Every query once through sidx with the default bodies (recall, candidates, server timings). */
  retrieve: RetrievePass;
  /** The same through the sids bodies. */
  sids: { beamWidth: number; meanSids: number; derivedFrom: string; retrieve: RetrievePass };
  exact: BaselineResult;
  hnsw: PeerBench | { skipped: string };
  /** Every load run, in the order run. */
  load: LoadRun[];
  rounds: number;
  /** Mean ms per phase, per sidx mode, over its load runs (or from timingsMs when the server has no histogram). */
  phases: { sidx: PhaseBreakdown; 'sidx-sids': PhaseBreakdown };
  bulkIndex: BulkLoadResult | { skipped: string };
  /** Restart with the catalog on disk: time to listening and to ready (vector slot file load / change-log catch-up). */
  restartMs: { listening: number; ready: number };
  /** The codes layouts in SID order the sidx server logged during the run (service/code-layout.ts); absent in older reports. */
  layouts?: string[];
  /** --reindex-to: request latency during a re-index's drop phase and outside it. */
  reindexDrop?: ReindexDropBench;
  /** vectors.storage of the server (absent: f32). */
  storage?: string;
  /** --batch: queries per POST /v1/retrieve/batch request in the batch systems' runs; absent: not run. */
  batch?: number;
  /** With a compressed storage: the same bodies through the same catalog restarted with vectors.storage f32. */
  asF32?: { recall: number; serverMs: RetrievePass['serverMs'] };
}

export interface BenchReport {
  version: 2;
  startedAt: string;
  command: string;
  machine: MachineInfo;
  model: { id: string; method: string; metric: string; dim: number; levels: number; codebookSizes: number[]; dir: string };
  data: string;
  encode?: EncodeBench;
  catalogs: CatalogBench[];
  /** Figures of an earlier report (--baseline) the targets compare against: recall by catalog size and mode. */
  baseline?: { file: string; recall: Array<{ items: number; system: SystemName; recall: number }> };
}

/** The Markdown section of a report: its catalog sizes and model, and its retrieve options unless the defaults. */
export function sectionKeyOf(r: BenchReport): string {
  const options = r.catalogs[0]?.options ?? 'server default';
  return `v2 sizes=${r.catalogs.map((c) => c.items).join(',')} model=${r.model.id}`
    + (options === 'server default' ? '' : ` ${options.replace(/[^A-Za-z0-9=,. -]/g, '')}`);
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
