/**
 * The peers `sidx bench` measures sidx against, each a small Fastify server in its own process on loopback, started
 * by src/bench/peers.ts as `node --import tsx src/bench/peer-server.ts --kind hnsw|bare ...`:
 * - hnsw: a usearch HNSW index (f32, in-process) behind the routes sidx has: POST /v1/items (the same body: ids with
 *   base64 or number-array embeddings; a known id is replaced), POST /v1/retrieve ({embedding, k}; other fields are
 *   ignored; answers {items: [{id, score}]}), GET /readyz, and POST /admin/expansion {expansionSearch}, which reloads
 *   the index with that search expansion (ef: usearch fixes it when an index is made) for the bench to tune it.
 *   Items are added on --add-threads threads (default 1, so that the same batches in the same order build the same graph).
 * - bare: POST /v1/retrieve parses the body (the same JSON parser and body limit as sidx) and answers a constant
 *   small response: the price of HTTP + JSON alone.
 * It prints "listening at http://127.0.0.1:PORT" once it listens.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { Index, MetricKind, ScalarKind } from 'usearch';

const { values: a } = parseArgs({
  options: {
    kind: { type: 'string' }, dim: { type: 'string' }, metric: { type: 'string', default: 'ip' },
    connectivity: { type: 'string', default: '16' }, 'add-threads': { type: 'string', default: '1' }, 'body-limit': { type: 'string', default: String(64 * 1024 * 1024) },
    'work-dir': { type: 'string' },
  },
  strict: true,
});
const kind = a.kind;
if (kind !== 'hnsw' && kind !== 'bare') throw new Error('--kind must be hnsw or bare');
const bodyLimit = Number(a['body-limit']);

type Embedding = string | number[];

const app = Fastify({ bodyLimit, logger: false });

if (kind === 'bare') {
  const answer = { items: [] as unknown[] };
  app.post('/v1/retrieve', async (req) => {
    if (req.body === null || typeof req.body !== 'object') throw Object.assign(new Error('body must be a JSON object'), { statusCode: 400 });
    return answer;
  });
  app.get('/readyz', async () => ({ ready: true }));
} else {
  const dim = Number(a.dim);
  if (!Number.isInteger(dim) || dim < 1) throw new Error('--dim must be a positive integer');
  const metric = a.metric === 'l2' ? MetricKind.L2sq : MetricKind.IP;
  const connectivity = Number(a.connectivity);
  const addThreads = Number(a['add-threads']);
  if (!Number.isInteger(addThreads) || addThreads < 0) throw new Error('--add-threads must be a non-negative integer');
  const saved = join(a['work-dir'] ?? '.', `peer-hnsw-${process.pid}.usearch`);
  const make = (expansionSearch: number) => new Index({
    dimensions: dim, metric, quantization: ScalarKind.F32, connectivity, expansion_add: 0, expansion_search: expansionSearch, multi: false,
  });
  let index = make(0);
  let expansionSearch = 0;
  let dirty = true;
  const keyOf = new Map<string, number>();
  const ids: string[] = [];
  const bad = (message: string) => Object.assign(new Error(message), { statusCode: 400 });

  /** Writes embedding `e` into row `row` of `out`. */
  const decode = (e: Embedding, out: Float32Array, row: number, field: string) => {
    if (typeof e === 'string') {
      const buf = Buffer.from(e, 'base64');
      if (buf.byteLength !== dim * 4) throw bad(`${field}: ${buf.byteLength / 4} floats, expected ${dim}`);
      new Uint8Array(out.buffer, out.byteOffset + row * dim * 4, dim * 4).set(buf);
    } else {
      if (!Array.isArray(e) || e.length !== dim) throw bad(`${field}: expected ${dim} numbers`);
      out.set(e, row * dim);
    }
  };

  app.post('/v1/items', async (req) => {
    const items = (req.body as { items?: Array<{ id: string; embedding: Embedding }> }).items;
    if (!Array.isArray(items) || items.length === 0) throw bad('items: a non-empty array is required');
    const vectors = new Float32Array(items.length * dim);
    const keys = new BigUint64Array(items.length);
    const replaced: bigint[] = [];
    items.forEach((it, i) => {
      decode(it.embedding, vectors, i, `items[${i}].embedding`);
      let key = keyOf.get(it.id);
      if (key === undefined) {
        key = ids.length;
        ids.push(it.id);
        keyOf.set(it.id, key);
      } else replaced.push(BigInt(key));
      keys[i] = BigInt(key);
    });
    if (replaced.length > 0) index.remove(BigUint64Array.from(replaced));
    // One thread by default, so that the same batches in the same order build the same graph: with every core (0) the
    // graph, and with it the ef that reaches sidx's recall, moved from run to run (docs/benchmarks.md, stop 41).
    index.add(keys, vectors, addThreads);
    dirty = true;
    return { items: items.length };
  });

  const query = new Float32Array(dim);
  app.post('/v1/retrieve', async (req) => {
    const body = req.body as { embedding?: Embedding; k?: number };
    if (body.embedding === undefined) throw bad('embedding is required');
    decode(body.embedding, query, 0, 'embedding');
    const k = body.k ?? 10;
    // One thread: the query runs on the request's thread, as one request would.
    const m = index.search(query, k, 1);
    const items = [];
    for (let i = 0; i < m.keys.length; i++) {
      const d = m.distances[i]!;
      items.push({ id: ids[Number(m.keys[i])]!, score: metric === MetricKind.IP ? 1 - d : -d });
    }
    return { items };
  });

  app.post('/admin/expansion', async (req) => {
    const ef = (req.body as { expansionSearch?: number }).expansionSearch;
    if (!Number.isInteger(ef) || ef! < 1) throw bad('expansionSearch: a positive integer is required');
    if (dirty) {
      index.save(saved);
      dirty = false;
    }
    // usearch frees an index's memory in its wrapper's finaliser, which runs on a later turn of the event loop after a
    // collection: drop the old index, collect, yield, collect, then load, or every tuning step leaves a whole index
    // behind (at 1M items 2.4 GB each: the bench ran out of memory).
    index = make(ef!);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
      gc();
    }
    index.load(saved);
    expansionSearch = ef!;
    return { expansionSearch, items: index.size() };
  });

  app.get('/readyz', async () => ({ items: index.size(), expansionSearch, connectivity: index.connectivity() }));
  app.addHook('onClose', async () => rmSync(saved, { force: true }));
}

const url = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`listening at ${url}`);
const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
