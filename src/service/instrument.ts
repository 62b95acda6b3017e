/**
 * Encoder metrics without touching the tokenizer: `instrumentEncoder` wraps one pool's `encode` (an own
 * property shadowing the prototype method) so every call, whoever makes it, records its row count and wall time.
 */
import type { EncoderPool } from '../tokenizer/encoder-pool.ts';
import type { SidxMetrics } from './metrics.ts';

export function instrumentEncoder(pool: EncoderPool, metrics: SidxMetrics): EncoderPool {
  const encode = pool.encode.bind(pool);
  pool.encode = async (vectors, n, opts) => {
    const t0 = performance.now();
    const out = await encode(vectors, n, opts);
    if (n > 0) metrics.observeEncode(n, (performance.now() - t0) / 1000);
    return out;
  };
  return pool;
}
