/**
 * The SID trie routes on a large synthetic catalog, through the real service and Fastify app:
 * - POST /v1/sids/next with 1,000 prefixes of each length 0..L-1 (prefixes of occupied SIDs), then mixed lengths,
 *   JSON then binary (SIDN, Accept: application/octet-stream), over a loopback socket: server time (Fastify's
 *   reply.elapsedTime: arrival to response end), the fetch round trip, and the trie lookups alone (service.sids.next);
 * - GET /v1/sids/trie full binary export (inject: no socket): time and bytes; JSON too, and a delta after a small write;
 * - the catalog open (the tries are counted from the natural postings).
 *
 *   node --import tsx bench/sids.bench.ts [--items 1000000] [--levels 3] [--codebook 256] [--rounds 50]
 *
 * The catalog is filled through the store layer (Catalog.upsertBatch) with random SIDs and 8-d vectors, under the
 * model version the service registered for a small generated bundle (levels × codebook, 8-d); no encoding.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import { Catalog } from '../src/store/catalog.ts';
import { decodeTrie } from '../src/sid/trie-format.ts';
import { seededUniform } from '../src/eval/synthetic.ts';
import { writeTestBundle } from '../test/helpers/service.ts';
import { benchArgs, latencySummary, markdownTable } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '1000000' },
  levels: { type: 'string', default: '3' },
  codebook: { type: 'string', default: '256' },
  rounds: { type: 'string', default: '50' },
});
const N = Number(args.items);
const L = Number(args.levels);
const K = Number(args.codebook);
const ROUNDS = Number(args.rounds);
const DIM = 8;
const BATCH = 20_000;
const silent = { info: () => {}, warn: () => {} };

const root = mkdtempSync(join(tmpdir(), 'sidx-sids-bench-'));
const dataDir = join(root, 'data');
const modelDir = join(root, 'model');
const config = loadConfig({ storage: { dataDir }, model: { dir: modelDir }, limits: { maxBatch: 10_000 } }, {});
const rows: Array<Array<string | number>> = [];

try {
  await writeTestBundle(modelDir, { dim: DIM, levels: L, codebookSize: K, seed: 1 });
  // Register the bundle (its version names the key space), then fill the catalog directly.
  let service = await SidxService.open(config, silent);
  const version = service.model.version;
  await service.close();
  const rand = seededUniform(42);
  const t0 = performance.now();
  const catalog = Catalog.open(join(dataDir, 'catalog'));
  for (let start = 0; start < N; start += BATCH) {
    const n = Math.min(BATCH, N - start);
    const items = Array.from({ length: n }, (_, i) => ({
      id: `item-${start + i}`,
      codes: Int32Array.from({ length: L }, () => Math.floor(rand() * K)),
      vector: Float32Array.from({ length: DIM }, () => rand() - 0.5),
    }));
    catalog.upsertBatch(version, items);
  }
  const fillS = (performance.now() - t0) / 1000;
  await catalog.close();
  console.error(`filled ${N} items in ${fillS.toFixed(1)} s`);

  const t1 = performance.now();
  const reopened = Catalog.open(join(dataDir, 'catalog'));
  const openMs = performance.now() - t1;
  const sids = reopened.sids.trie(version).trie!.size;
  await reopened.close();
  rows.push(['catalog open (tries counted from the postings)', `${openMs.toFixed(0)} ms`, `${sids} occupied SIDs`]);

  service = await SidxService.open(config, silent);
  const app = await buildApp({ service, config: { ...config, limits: { ...config.limits, maxBatch: 1000 } } });
  // Fastify's own measure of each request, from its arrival to the response's end (what the server spends).
  let serverMs = 0;
  app.addHook('onResponse', async (_req, reply) => {
    serverMs = reply.elapsedTime;
  });
  // 1,000 prefixes of one length (each the prefix of a random occupied SID), for each length 0..L-1, then mixed.
  const full = decodeTrie((await app.inject({ method: 'GET', url: '/v1/sids/trie' })).rawPayload);
  const prefixOf = (len: number) => {
    const s = Math.floor(rand() * (full.added.length / L));
    return Array.from(full.added.subarray(s * L, s * L + len));
  };
  const sets: Array<[string, number[][]]> = [];
  for (let len = 0; len < L; len++) sets.push([`length ${len}`, Array.from({ length: 1000 }, () => prefixOf(len))]);
  sets.push([`lengths 0..${L - 1} mixed`, Array.from({ length: 1000 }, (_, i) => prefixOf(i % L))]);
  // `next` goes over a real loopback socket: inject decodes every answer into a UTF-8 string before the response
  // finishes (light-my-request), which a 1.5 MB binary answer pays for in several ms that no client sees.
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  for (const binary of [false, true]) {
    const headers = { 'content-type': 'application/json', ...(binary ? { accept: 'application/octet-stream' } : {}) };
    for (const [what, prefixes] of sets) {
      const body = JSON.stringify({ prefixes });
      const httpMs: number[] = [];
      const fastifyMs: number[] = [];
      const serviceMs: number[] = [];
      let codesOut = 0;
      let bytes = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const s = performance.now();
        const res = await fetch(`${base}/v1/sids/next`, { method: 'POST', body, headers });
        const answer = await res.arrayBuffer();
        httpMs.push(performance.now() - s);
        fastifyMs.push(serverMs);
        if (res.status !== 200) throw new Error(Buffer.from(answer).toString());
        bytes = answer.byteLength;
        const t = performance.now();
        const out = service.sids.next(prefixes);
        serviceMs.push(performance.now() - t);
        codesOut = out.next.reduce((a, e) => a + e.codes.length, 0);
      }
      rows.push([`POST /v1/sids/next${binary ? ' binary (SIDN)' : ''}, 1,000 prefixes of ${what}`,
        `server p50 ${latencySummary(fastifyMs).p50.toFixed(2)} ms (round trip ${latencySummary(httpMs).p50.toFixed(2)}); lookups alone ${latencySummary(serviceMs).p50.toFixed(2)} ms`,
        `${codesOut} codes, ${(bytes / 1e6).toFixed(2)} MB ${binary ? 'SIDN' : 'JSON'}`]);
    }
  }

  for (const format of ['binary', 'json']) {
    const ms: number[] = [];
    const server: number[] = [];
    let bytes = 0;
    for (let r = 0; r < Math.min(ROUNDS, format === 'json' ? 3 : 10); r++) {
      const s = performance.now();
      const res = await app.inject({ method: 'GET', url: `/v1/sids/trie?format=${format}` });
      ms.push(performance.now() - s);
      server.push(serverMs);
      bytes = res.rawPayload.length;
    }
    rows.push([`GET /v1/sids/trie full ${format}`, `server p50 ${latencySummary(server).p50.toFixed(0)} ms (inject ${latencySummary(ms).p50.toFixed(0)})`, `${(bytes / 1e6).toFixed(2)} MB`]);
  }
  const seq = full.seq;
  await service.delete(Array.from({ length: 100 }, (_, i) => `item-${i}`));
  const delta = decodeTrie((await app.inject({ method: 'GET', url: `/v1/sids/trie?since=${seq}` })).rawPayload);
  rows.push(['GET /v1/sids/trie?since= after deleting 100 items', `server ${serverMs.toFixed(2)} ms`,
    `${delta.kind}, +${delta.added.length / L} -${delta.removed.length / L} SIDs`]);
  await app.close();
  await service.close();
  console.log(`SID trie routes, ${N} items, ${L} levels x ${K} codes, node ${process.version}\n`);
  console.log(markdownTable(['what', 'time', 'size'], rows));
} finally {
  rmSync(root, { recursive: true, force: true });
}
