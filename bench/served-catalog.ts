/**
 * A `sidx serve` child over a catalog of `sidx bench`'s synthetic items kept in a data directory between runs: the
 * items are upserted over HTTP (1,000 per request, 2 in flight) only when the directory does not already hold them, so a
 * change can be measured again without a new ingest. Shared by bench/serve-profile.bench.ts and bench/beam-budget.bench.ts.
 */
import { join, resolve } from 'node:path';
import { rmSync } from 'node:fs';
import { upsertAll } from '../src/bench/http.ts';
import { startBenchServer, type BenchServer } from '../src/bench/server.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { EncoderPool } from '../src/tokenizer/encoder-pool.ts';
import { sortRowsBySid } from '../src/sid/codec.ts';

export interface ServedCatalogOptions {
  items: Float32Array;
  n: number;
  dim: number;
  dataDir: string;
  model: string;
  env: Record<string, string>;
}

/** Starts `sidx serve` on `dataDir`/data with `nodeArgs` before the CLI (e.g. --cpu-prof). */
export function startServe(o: ServedCatalogOptions, nodeArgs: readonly string[] = []): Promise<BenchServer> {
  return startBenchServer({ dataDir: join(resolve(o.dataDir), 'data'), modelDir: resolve(o.model), env: o.env, nodeArgs });
}

/** Makes sure `dataDir` holds the n items (ingesting them into a fresh catalog when it does not); the server is stopped. */
export async function ensureCatalog(o: ServedCatalogOptions): Promise<void> {
  let server = await startServe(o);
  const held = Number((await server.readiness()).items ?? 0);
  if (held !== o.n) {
    await server.stop();
    rmSync(join(resolve(o.dataDir), 'data'), { recursive: true, force: true });
    server = await startServe(o);
    const t0 = performance.now();
    await upsertAll(server.url, o.items, o.n, o.dim, 1000, 2, () => {});
    console.error(`[served-catalog] upserted ${o.n} items in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  await server.stop();
}

/**
 * `items` reordered by their SIDs under `model` (lexicographic, ties in the original order): ingested in this order,
 * a catalog's slots, and so its code rows and vector rows, follow SID order, as a layout kept in SID order would.
 */
export async function sidOrdered(items: Float32Array, n: number, dim: number, model: string): Promise<Float32Array> {
  const pool = await EncoderPool.create(await loadBundle(resolve(model)), { workers: 1, provider: 'cpu', beamModel: 'none' });
  try {
    const { codes } = await pool.encode(items.subarray(0, n * dim), n, { codesOnly: true });
    const order = sortRowsBySid(Int32Array.from({ length: n }, (_, i) => i), codes, pool.levels);
    const out = new Float32Array(n * dim);
    order.forEach((from, to) => out.set(items.subarray(from * dim, (from + 1) * dim), to * dim));
    return out;
  } finally {
    await pool.close();
  }
}
