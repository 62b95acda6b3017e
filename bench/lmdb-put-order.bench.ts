/**
 * Whether an upsert batch's posting puts would gain from being sorted by key: an LMDB database of `--entries` random
 * posting keys (3 x u16 SID + u64 item key, empty values, as the catalog's natural-order postings), then rounds of
 * 1,000 new random keys put in one transaction, alternately in arrival order and sorted. Prints the median time of
 * the puts (the commit excluded) per order.
 *
 *   node --import tsx bench/lmdb-put-order.bench.ts [--entries 1000000] [--rounds 20] [--dir /tmp/sidx-put-order]
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { benchArgs, markdownTable } from './lib.ts';
import { seededUniform } from '../src/random.ts';

const args = benchArgs({
  entries: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '20' },
  dir: { type: 'string', default: join(tmpdir(), 'sidx-put-order') },
});
const dir = String(args.dir);
rmSync(dir, { recursive: true, force: true });
const env = open<Buffer, Buffer>({ path: dir, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false, maxDbs: 2 });
const db = env.openDB<Buffer, Buffer>({ name: 'postings', encoding: 'binary', keyEncoding: 'binary' });
const random = seededUniform(1);
const code = () => Math.floor(random() * 256); // 0..255, deterministic
let next = 0;
const postingKey = () => {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(code(), 0);
  b.writeUInt16BE(code(), 2);
  b.writeUInt16BE(code(), 4);
  b.writeBigUInt64BE(BigInt(next++), 6);
  return b;
};
const empty = Buffer.alloc(0);
for (let loaded = 0; loaded < Number(args.entries); loaded += 10_000) {
  await env.transaction(() => { for (let i = 0; i < 10_000; i++) db.put(postingKey(), empty); });
}
const ms: Record<'arrival' | 'sorted', number[]> = { arrival: [], sorted: [] };
for (let round = 0; round < Number(args.rounds); round++) {
  for (const order of ['arrival', 'sorted'] as const) {
    const keys = Array.from({ length: 1000 }, postingKey);
    if (order === 'sorted') keys.sort(Buffer.compare);
    await env.transaction(() => {
      const t0 = performance.now();
      for (const k of keys) db.put(k, empty);
      ms[order].push(performance.now() - t0);
    });
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
console.log(`${args.entries} postings in LMDB, 1,000 new ones per transaction, ${args.rounds} rounds per order:`);
console.log(markdownTable(['order', 'ms for 1,000 puts (median)', 'fastest'], (['arrival', 'sorted'] as const).map((o) => [o, median(ms[o]).toFixed(2), Math.min(...ms[o]).toFixed(2)])));
await env.close();
rmSync(dir, { recursive: true, force: true });
