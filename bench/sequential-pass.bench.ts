/**
 * The server-side latency a sequential client sees (issue 10's p50 target is read on such a pass): a `sidx serve` child
 * over the catalog `bench/serve-profile.bench.ts` keeps in `--data-dir` (run that first), then `--passes` sequential
 * passes of `sidx bench`'s query bodies (one request at a time through fetch, as `sidx bench`'s recall pass sends
 * them), printing each pass's p50 of `timingsMs.total` and its mean phases. The first pass after a start touches the
 * vector file's pages for the first time. `--variants` runs one server per entry, in turn: `default`, or `K=V;K2=V2`
 * settings for the child (alternate them and repeat with `--rounds` to compare).
 *
 *   node --import tsx bench/sequential-pass.bench.ts [--variants default,SIDX__VECTORS__RERANK_OFF_THREAD=false]
 *        [--rounds 2] [--passes 2] [--queries 500] [--model models/default] [--data-dir /tmp/sidx-serve-profile]
 */
import { join, resolve } from 'node:path';
import { retrieveBodies, retrievePass } from '../src/bench/http.ts';
import { SIDX_SERVE, startChildServer } from '../src/bench/server.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { benchArgs, envPairs } from './lib.ts';

const args = benchArgs({
  variants: { type: 'string', default: 'default,SIDX__VECTORS__RERANK_OFF_THREAD=false' }, rounds: { type: 'string', default: '2' },
  passes: { type: 'string', default: '2' }, queries: { type: 'string', default: '500' }, model: { type: 'string', default: 'models/default' },
  'data-dir': { type: 'string', default: '/tmp/sidx-serve-profile' },
});
const Q = Number(args.queries);
const DIM = 512;
const { queries } = await syntheticCatalog({ n: 1000, q: Q, dim: DIM, seed: 1 }); // the queries do not depend on n
const bodies = retrieveBodies(queries, Q, DIM, {});
const round = (x: number) => Number(x.toFixed(3));
for (let r = 1; r <= Number(args.rounds); r++) {
  for (const variant of String(args.variants).split(',')) {
    const env = { SIDX__SERVER__LOG_LEVEL: 'info', ...(variant === 'default' ? {} : envPairs(variant.replaceAll(';', ','))) };
    const server = await startChildServer('sidx serve', [...SIDX_SERVE, '--port', '0', '--host', '127.0.0.1',
      '--data-dir', join(resolve(String(args['data-dir'])), 'data'), '--model', resolve(String(args.model))], env);
    const n = Number((await server.readiness()).items ?? 0);
    if (n === 0) throw new Error(`no catalog in ${args['data-dir']}: run bench/serve-profile.bench.ts first`);
    const passes: string[] = [];
    for (let p = 0; p < Number(args.passes); p++) {
      const pass = await retrievePass(server.url, bodies, new BigInt64Array(Q * 10), 10, n);
      const phases = Object.entries(pass.serverPhasesMs).filter(([, ms]) => ms > 0).map(([k, ms]) => `${k} ${round(ms)}`).join(', ');
      passes.push(`pass ${p + 1} p50 ${pass.serverMs.p50.toFixed(3)} ms (mean ${phases})`);
    }
    await server.stop();
    console.log(`round ${r}, ${variant}, ${n} items: ${passes.join('; ')}`);
  }
}
