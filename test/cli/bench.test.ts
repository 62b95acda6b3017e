/**
 * `sidx bench` end to end at a tiny size: sidx, the HNSW peer and the bare route as child processes under the same
 * load, the sids mode, ingest into sidx and the peer, `sidx index`, restart, the phase breakdown and the targets
 * table. Figures are only checked to exist and be positive: no timing thresholds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchReport, SystemName } from '../../src/bench/report.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/paths.ts';

test('sidx bench runs sidx beside the HNSW peer and the bare route, and reports phases and targets', async (t) => {
  const { dir, cleanup } = tempDir('sidx-bench-cli-');
  t.after(cleanup);
  const out = join(dir, 'bench.json');
  const markdown = join(dir, 'bench.md');
  const r = await runCli(t, ['bench', '--sizes', '2000', '--queries', '20', '--duration', '1', '--concurrency', '1,2', '--skip-encode', '--batch', '4',
    '--reindex-to', 'rqkmeans-3x256', '--work-dir', join(dir, 'work'), '--out', out, '--markdown', markdown]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
  assert.equal(report.version, 2);
  const c = report.catalogs[0]!;
  assert.equal(c.items, 2000);

  for (const system of ['sidx', 'sidx-sids', 'hnsw', 'bare', 'sidx-batch', 'sidx-sids-batch', 'bare-batch'] as SystemName[]) {
    for (const connections of [1, 2]) {
      const run = c.load.find((l) => l.system === system && l.connections === connections);
      assert.ok(run, `${system} at ${connections} connection(s) was run`);
      assert.ok(run.qps > 0, `${system} at ${connections}: QPS ${run.qps}`);
      assert.equal(run.non2xx, 0, `${system} at ${connections}: non-2xx answers`);
      assert.equal(run.queriesPerRequest, system.endsWith('-batch') ? 4 : undefined, `${system}: queries per request`);
      // Where the run's CPU went (/proc): the server's and the load generator's per request, the machine's busy share.
      if (process.platform === 'linux') {
        const cpu = run.cpu!;
        assert.ok(cpu.serverMsPerRequest > 0 && cpu.loadGeneratorMsPerRequest > 0, `${system} at ${connections}: ${JSON.stringify(cpu)}`);
        assert.ok(cpu.machineBusy > 0 && cpu.machineBusy <= 1, `${system} at ${connections}: machine busy ${cpu.machineBusy}`);
      }
    }
  }
  // One connection count after the other, every system at it back to back, sidx right beside the peer it is compared with.
  assert.deepEqual(c.load.map((l) => `${l.system}@${l.connections}`),
    ['sidx@1', 'hnsw@1', 'sidx-sids@1', 'bare@1', 'sidx-batch@1', 'sidx-sids-batch@1', 'bare-batch@1',
      'sidx@2', 'hnsw@2', 'sidx-sids@2', 'bare@2', 'sidx-batch@2', 'sidx-sids-batch@2', 'bare-batch@2']);
  assert.equal(c.batch, 4);
  assert.ok(!('skipped' in c.hnsw), 'the HNSW peer ran');
  assert.equal(c.hnsw.upsert.items, 2000);
  assert.equal(c.hnsw.addThreads, 1, 'the peer adds on one thread by default (a deterministic graph)');
  assert.equal(c.hnsw.upsert.concurrency, 1, 'the peer is sent one batch at a time: the same order, the same graph');
  assert.equal(c.upsert.concurrency, 2, 'sidx gets --upsert-concurrency batches in flight (2 by default)');
  assert.ok(c.hnsw.upsert.itemsPerSecond > 0);
  assert.ok(c.hnsw.tuning.tried.length > 0 && c.hnsw.tuning.expansionSearch >= 10);
  assert.equal(c.hnsw.tuning.reached, c.hnsw.tuning.recall >= c.retrieve.recall);
  assert.ok(c.upsert.itemsPerSecond > 0 && c.upsert.batchLatencyMs.max > 0);

  // The sids mode: beams of 32 generated SIDs (at most 32: the beam of a small catalog's model may hold fewer).
  assert.equal(c.sids.beamWidth, 32);
  assert.ok(c.sids.meanSids > 1 && c.sids.meanSids <= 32, `mean SIDs per body ${c.sids.meanSids}`);
  assert.equal(c.sids.retrieve.queries, 20);

  // Phase breakdown per mode, from the server's sidx_request_phase_seconds over the load runs.
  for (const mode of ['sidx', 'sidx-sids'] as const) {
    const p = c.phases[mode];
    assert.equal(p.source, 'metrics');
    const runs = c.load.filter((l) => l.system === mode);
    assert.ok(p.requests >= runs.reduce((s, l) => s + l.requests - l.non2xx, 0) * 0.9, `${mode}: phases over ${p.requests} requests`);
    for (const phase of ['parse', 'candidates', 'respond']) assert.ok(p.meanMs[phase]! > 0, `${mode}: ${phase} ${p.meanMs[phase]}`);
  }
  const query = (c.phases.sidx.meanMs.encode ?? 0) + (c.phases.sidx.meanMs.beam ?? 0);
  assert.ok(query > 0, 'the default mode runs the encoder or the beam on the query');

  assert.ok(!('skipped' in c.bulkIndex) && c.bulkIndex.items === 2000 && c.bulkIndex.batch === 5000 && c.bulkIndex.itemsPerSecond > 0);
  assert.ok(c.restartMs.ready > 0);
  assert.ok(c.memory.afterUpsert.rssBytes > 0);
  // The codes layouts the server logged (service/code-layout.ts): none here, since 2,000 items are below sq8's training
  // size (10,000), so there are no codes yet; test/service/code-layout.test.ts covers the layouts themselves.
  assert.deepEqual(c.layouts, []);

  // --reindex-to: requests during the re-index's drop phase beside the same requests outside it.
  const drop = c.reindexDrop!;
  assert.equal(drop.to, 'rqkmeans-3x256');
  assert.ok(drop.healthz.during.n > 0 && drop.healthz.during.n === drop.retrieve.during.n, 'pairs sent during the drop');
  assert.ok(drop.healthz.outside.n >= 300 && drop.healthz.outside.n >= drop.healthz.during.n);
  assert.ok(drop.jobMs >= drop.dropMs && drop.retrieve.during.p99 > 0);

  const md = readFileSync(markdown, 'utf8');
  assert.match(md, /<!-- sidx bench: begin v2 sizes=2000 model=/);
  assert.match(md, /\| HNSW peer \(usearch [^|]*added on 1 thread, ef \d+\) \| [0-9.]+ \| [0-9.,]+ \| [0-9.,]+ \|/);
  assert.match(md, /\| bare Fastify route \(parses the body\) \| n\/a \| [0-9.,]+ \| [0-9.,]+ \|/);
  assert.match(md, /\| sidx POST \/v1\/items, 2 in flight \| [0-9.,]+ \|/);
  assert.match(md, /\| HNSW peer POST \/v1\/items, 1 in flight \(the same order in every run\) \| [0-9.,]+ \|/);
  assert.match(md, /\/v1\/retrieve QPS \/ HNSW peer QPS, 2 connections \| [^|]+ \| [0-9.]+x \| ≥ 1x \| (meets|misses) \|/);
  assert.match(md, /sids \(beam of 32, no rerank\) QPS \/ bare route QPS, 2 connections/);
  if (process.platform === 'linux') assert.match(md, /\| bare Fastify route \(parses the body\) \| [0-9.]+ \/ [0-9.]+ \/ [0-9.]+% \| [0-9.]+ \/ [0-9.]+ \/ [0-9.]+% \|/);
  assert.match(md, /\/healthz p99 during a re-index drop \/ outside it, \/ 2 \(issue 14\) \| [0-9.]+ \/ [0-9.]+ ms \|/);
  assert.match(md, /Re-index to rqkmeans-3x256 after the restart/);
  assert.match(md, /Codes laid out in SID order by the server \(vectors\.layout\): 0 time\(s\)\./);
  assert.match(md, /POST \/v1\/retrieve\/batch, 4 of the same queries per request/);
  assert.match(md, /\| sidx \/v1\/retrieve\/batch \(4 sids queries per request\), 2 connection\(s\) \| [0-9.,]+ \| [0-9.,]+ \| [0-9.]+ \| [0-9.]+x \| [0-9.]+x \| [0-9.]+x \|/);
  assert.match(md, /\| mode \| parse \| encode \| beam \| candidates \| rerank \| fetch \| respond \| sum \| source \|/);
});

test('sidx bench --encode-model forge times an RQ-VAE of FORGE\'s shape (3 x 8192 on 512-d) beside PyTorch', async (t) => {
  const { dir, cleanup } = tempDir('sidx-bench-forge-');
  t.after(cleanup);
  const out = join(dir, 'bench.json');
  const r = await runCli(t, ['bench', '--sizes', '200', '--queries', '5', '--duration', '1', '--concurrency', '1', '--hnsw-max', '0',
    '--skip-bulk-index', '--encode-model', 'forge', '--encode-batches', '1,16', '--encode-seconds', '1', '--encode-threads', '1',
    '--work-dir', join(dir, 'work'), '--out', out, '--markdown', join(dir, 'bench.md')]);
  assert.equal(r.code, 0, r.stderr);
  const e = (JSON.parse(readFileSync(out, 'utf8')) as BenchReport).encode!;
  assert.match(e.model!, /FORGE shape: RQ-VAE 512-256-256-64, 3 x 8192/);
  assert.deepEqual(e.rows.map((row) => row.batch), [1, 16]);
  for (const row of e.rows) assert.ok(row.sidxPool > 0 && row.directOrt > 0, JSON.stringify(row));
  // PyTorch runs the same 3 x 8192 model where a Python with torch is installed, and finds the same codes.
  if (!('skipped' in e.torch)) {
    assert.ok(e.rows.every((row) => (row.torch ?? 0) > 0));
    assert.ok(e.torch.codesAgree >= 0.99, `codes agree on ${e.torch.codesAgree}`);
  }
  assert.match(readFileSync(join(dir, 'bench.md'), 'utf8'), /#### Encode \(FORGE shape: RQ-VAE 512-256-256-64, 3 x 8192/);

  const bad = await runCli(t, ['bench', '--encode-model', 'pytorch']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--encode-model must be served or forge/);
});
