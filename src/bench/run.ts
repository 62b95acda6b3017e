/**
 * One catalog size of `sidx bench`: sidx (a real `sidx serve` child), the HNSW peer and the bare route (children
 * too, src/bench/peer-server.ts), the same catalog ingested over HTTP into sidx and the peer, the same bodies under
 * the same autocannon load one system at a time, then restart and `sidx index` bulk load.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Metric } from '../vector/vector-index.ts';
import { exactBaseline } from './baselines.ts';
import { benchBulkLoad } from './bulk-load.ts';
import { batchBodies, retrieveBodies, retrievePass, sidsBodies, upsertAll } from './http.ts';
import { runLoad } from './load.ts';
import { benchReindexDrop } from './reindex-drop.ts';
import { startPeer, tuneExpansion } from './peers.ts';
import { mergePhases, phaseDelta, phasesFromTimings, readPhases, type PhaseBreakdown } from './phases.ts';
import type { CatalogBench, LoadRun, PeerBench, SystemName } from './report.ts';
import { loadCpuMeter, REPO_ROOT, startBenchServer, type BenchServer } from './server.ts';

export interface CatalogRunOptions {
  n: number;
  items: Float32Array;
  dim: number;
  metric: Metric;
  queries: Float32Array;
  q: number;
  k: number;
  /** Sent in every default retrieve body besides embedding and k (e.g. expand, maxCandidates). */
  retrieveOptions: Record<string, unknown>;
  /** The served `vectors.storage` (the child inherits SIDX__VECTORS__STORAGE); named in the report unless f32. */
  vectorsStorage?: string;
  modelDir: string;
  workDir: string;
  concurrency: number[];
  durationS: number;
  rounds: number;
  upsertBatch: number;
  upsertConcurrency: number;
  /** sidx serve --workers; undefined: the server's default. */
  workers?: number;
  sidsBeamWidth: number;
  /** Queries per POST /v1/retrieve/batch request in the batch systems (0: no batch systems). */
  batch: number;
  connectivity: number;
  /** Threads the HNSW peer adds a batch with (0: every core). */
  addThreads: number;
  bodyLimitBytes: number;
  /** Skip the HNSW peer above this many items. */
  hnswMax: number;
  bulkIndex: boolean;
  /** Re-index to this registry path after the restart, timing requests during its drop phase. */
  reindexTo?: string;
  generateSeconds: number;
  progress: (msg: string) => void;
}

interface System { name: SystemName; server: BenchServer; bodies: readonly string[]; path?: string; queriesPerRequest?: number }

const RETRIEVE = '/v1/retrieve';

function usearchVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/usearch/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The codes layouts the sidx server logged (service/code-layout.ts), in order. */
function codeLayouts(log: string): string[] {
  return [...log.matchAll(/vector codes laid out in SID order: ([^"\n]*)/g)].map((m) => m[1]!);
}

/**
 * Every system at every connection count, `rounds` times. A round measures one connection count after the other and,
 * at each, every system back to back (ABBA order across rounds), sidx beside the HNSW peer: the two loads a target
 * compares are seconds apart, so a dip of the shared host tends to fall on both rather than on one.
 */
async function loadRounds(systems: System[], o: CatalogRunOptions): Promise<LoadRun[]> {
  const runs: LoadRun[] = [];
  for (const s of systems) {
    o.progress(`${s.name}: 1 s warm-up at ${Math.max(...o.concurrency)} connections`);
    await runLoad({ url: s.server.url, path: s.path ?? RETRIEVE, bodies: s.bodies, connections: Math.max(...o.concurrency), durationS: 1 });
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const c of o.concurrency) {
      for (const s of round % 2 === 1 ? systems : [...systems].reverse()) {
        o.progress(`round ${round}: ${s.name}, ${c} connection(s), ${o.durationS} s`);
        const sidx = s.name.startsWith('sidx') && s.path === undefined; // a batch route's phases mix per-request and per-query ones
        const before = sidx ? await readPhases(s.server.url) : undefined;
        const meter = loadCpuMeter(s.server.pid);
        const load = await runLoad({ url: s.server.url, path: s.path ?? RETRIEVE, bodies: s.bodies, connections: c, durationS: o.durationS });
        const cpu = meter(load);
        const phases = before ? phaseDelta(before, await readPhases(s.server.url)) : undefined;
        const per = s.queriesPerRequest ? { queriesPerRequest: s.queriesPerRequest } : {};
        runs.push({ system: s.name, round, ...per, ...load, ...(phases ? { phases } : {}), ...(cpu ? { cpu } : {}) });
      }
    }
  }
  return runs;
}

function modePhases(runs: LoadRun[], system: SystemName, fallback: () => PhaseBreakdown): PhaseBreakdown {
  let merged: PhaseBreakdown | undefined;
  for (const r of runs) if (r.system === system) merged = mergePhases(merged, r.phases);
  return merged ?? fallback();
}

export async function benchCatalog(o: CatalogRunOptions): Promise<CatalogBench> {
  const { n, dim, k, progress } = o;
  const dataDir = join(o.workDir, `catalog-${n}`);
  rmSync(dataDir, { recursive: true, force: true });
  const servers: BenchServer[] = [];
  // A failed run must not leave a server behind.
  const killAll = () => servers.forEach((s) => s.child.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    progress(`${n.toLocaleString('en-US')} items: starting sidx serve (data in ${dataDir})`);
    const sidx = await startBenchServer({ dataDir, modelDir: o.modelDir, workers: o.workers, env: { SIDX__LIMITS__MAX_BATCH: String(Math.max(1000, o.upsertBatch)) } });
    servers.push(sidx);
    const afterStart = sidx.memory();
    const shown = (name: string) => {
      let last = 0;
      return (done: number) => {
        if (done - last < Math.max(o.upsertBatch, n / 10) && done !== n) return;
        last = done;
        progress(`${name} upsert ${done.toLocaleString('en-US')} / ${n.toLocaleString('en-US')}`);
      };
    };
    const upsert = await upsertAll(sidx.url, o.items, n, dim, o.upsertBatch, o.upsertConcurrency, shown('sidx'));
    const ready = await sidx.readiness();
    if (ready.items !== n || ready.vectors !== n) throw new Error(`after the upserts /readyz says ${JSON.stringify(ready)}, expected ${n} items and vectors`);
    const afterUpsert = sidx.memory();

    progress('exact FAISS Flat: ground truth and single-query timings');
    const exact = await exactBaseline({ items: o.items, n, dim, metric: o.metric, queries: o.queries, q: o.q, k, budgetMs: o.durationS * 1000 });
    progress(`/v1/retrieve: ${o.q} queries, one at a time (recall@${k}, candidates, server timings)`);
    const bodies = retrieveBodies(o.queries, o.q, dim, { k, ...o.retrieveOptions });
    const retrieve = await retrievePass(sidx.url, bodies, exact.truth, k, n);
    progress(`sids mode: beams of ${o.sidsBeamWidth} SIDs from sidx's beam, then ${o.q} queries by SIDs`);
    const sids = await sidsBodies(sidx.url, o.queries, o.q, dim, o.sidsBeamWidth, k);
    const sidsRetrieve = await retrievePass(sidx.url, sids.bodies, exact.truth, k, n);
    const systems: System[] = [{ name: 'sidx', server: sidx, bodies }];

    let hnsw: PeerBench | { skipped: string } = { skipped: `catalog larger than --hnsw-max ${o.hnswMax}` };
    const peerOptions = { dim, metric: o.metric, connectivity: o.connectivity, addThreads: o.addThreads, bodyLimitBytes: o.bodyLimitBytes, workDir: o.workDir };
    if (n <= o.hnswMax) {
      progress(`HNSW peer (usearch, connectivity ${o.connectivity}): start and ingest over HTTP`);
      const peer = await startPeer('hnsw', peerOptions);
      servers.push(peer);
      // One batch at a time: batches in flight together reach the peer in either order, and another order builds
      // another graph (the ef that reaches sidx's recall on the bench's 100K catalog moved between 32, 62 and 115).
      const peerUpsert = await upsertAll(peer.url, o.items, n, dim, o.upsertBatch, 1, shown('HNSW peer'));
      const memoryAfterUpsert = peer.memory();
      const tuning = await tuneExpansion(peer.url, bodies, exact.truth, k, retrieve.recall, progress);
      hnsw = { kind: 'usearch HNSW', version: usearchVersion(), metric: o.metric === 'ip' ? 'ip' : 'l2sq', connectivity: o.connectivity, addThreads: o.addThreads, upsert: peerUpsert, memoryAfterUpsert, tuning };
      systems.push({ name: 'hnsw', server: peer, bodies });
    }
    systems.push({ name: 'sidx-sids', server: sidx, bodies: sids.bodies });
    const bare = await startPeer('bare', peerOptions);
    servers.push(bare);
    systems.push({ name: 'bare', server: bare, bodies });
    if (o.batch > 0) {
      // The batch route's own path; the bare route parses the batch bodies at its one path.
      const batched = (name: SystemName, server: BenchServer, single: readonly string[], path?: string): System =>
        ({ name, server, bodies: batchBodies(single, o.batch), queriesPerRequest: o.batch, path: path ?? RETRIEVE });
      systems.push(batched('sidx-batch', sidx, bodies, '/v1/retrieve/batch'), batched('sidx-sids-batch', sidx, sids.bodies, '/v1/retrieve/batch'),
        batched('bare-batch', bare, bodies));
    }

    const load = await loadRounds(systems, o);
    const afterLoad = sidx.memory();
    const layouts = codeLayouts(sidx.output());
    for (const s of servers.splice(0)) await s.stop();

    progress('restart with the catalog on disk');
    const again = await startBenchServer({ dataDir, modelDir: o.modelDir, workers: o.workers });
    servers.push(again);
    const restartMs = again.startMs;
    const reindexDrop = o.reindexTo ? await benchReindexDrop(again.url, bodies, o.reindexTo, progress) : undefined;
    await again.stop();
    servers.length = 0;
    let asF32: CatalogBench['asF32'];
    if (o.vectorsStorage && o.vectorsStorage !== 'f32') {
      progress(`the same catalog restarted with vectors.storage f32: recall of the same ${o.q} queries`);
      const f32 = await startBenchServer({ dataDir, modelDir: o.modelDir, workers: o.workers, env: { SIDX__VECTORS__STORAGE: 'f32' } });
      servers.push(f32);
      const pass = await retrievePass(f32.url, bodies, exact.truth, k, n);
      asF32 = { recall: pass.recall, serverMs: pass.serverMs };
      await f32.stop();
      servers.length = 0;
    }
    rmSync(dataDir, { recursive: true, force: true });

    let bulkIndex: CatalogBench['bulkIndex'] = { skipped: '--skip-bulk-index' };
    if (o.bulkIndex) {
      progress(`sidx index: bulk load of ${n.toLocaleString('en-US')} items from a .npy`);
      bulkIndex = await benchBulkLoad(o.items, n, dim, o.modelDir, o.workDir);
    }
    const storage = o.vectorsStorage && o.vectorsStorage !== 'f32' ? [`vectors.storage ${o.vectorsStorage}`] : [];
    const extra = [...Object.entries(o.retrieveOptions).map(([key, v]) => `${key} ${v}`), ...storage].join(', ');
    return {
      items: n, queries: o.q, k, options: extra || 'server default', generateSeconds: o.generateSeconds, serverStartMs: sidx.startMs, upsert,
      memory: { afterStart, afterUpsert, afterLoad, bytesPerItem: (afterUpsert.rssBytes - afterStart.rssBytes) / n, vectorBytes: 4 * dim, rawVectorBytes: 4 * dim * n },
      retrieve,
      sids: { beamWidth: o.sidsBeamWidth, meanSids: sids.meanSids, derivedFrom: `sidx's beam: POST /v1/retrieve {embedding, expand: "beam", beamWidth: ${o.sidsBeamWidth}, rerank: false} -> querySids`, retrieve: sidsRetrieve },
      exact: exact.result, hnsw, load, rounds: o.rounds,
      phases: { sidx: modePhases(load, 'sidx', () => phasesFromTimings(retrieve)), 'sidx-sids': modePhases(load, 'sidx-sids', () => phasesFromTimings(sidsRetrieve)) },
      bulkIndex, restartMs, layouts, ...(reindexDrop ? { reindexDrop } : {}), ...(o.batch > 0 ? { batch: o.batch } : {}),
      ...(o.vectorsStorage && o.vectorsStorage !== 'f32' ? { storage: o.vectorsStorage, asF32 } : {}),
    };
  } finally {
    killAll();
    process.off('exit', killAll);
    if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
  }
}
