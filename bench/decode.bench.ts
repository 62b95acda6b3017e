/**
 * The body decode of a `POST /v1/items` batch on the event loop: `decodeEmbeddings` over 1,000 base64 strings of
 * 512 floats (canonical-base64 check, float32 bytes into one array, finiteness and norm), ms per batch.
 * `--compare DIR` also times the same function of another checkout (a worktree of an earlier commit), alternated.
 *
 *   node --import tsx bench/decode.bench.ts [--rounds 4] [--compare ../wt-base]
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeEmbeddings } from '../src/http/embedding-input.ts';
import { benchArgs } from './lib.ts';

const args = benchArgs({ rounds: { type: 'string', default: '4' }, compare: { type: 'string', default: '' } });
const dim = 512;
const n = 1000;
const bodies = Array.from({ length: n }, (_, i) => Buffer.from(Float32Array.from({ length: dim }, (_, j) => Math.sin(i + j * 0.1) * 0.04).buffer).toString('base64'));
type Decode = typeof decodeEmbeddings;
const variants: Array<[string, Decode]> = [['this checkout', decodeEmbeddings]];
if (args.compare) {
  const other = (await import(pathToFileURL(resolve(String(args.compare), 'src/http/embedding-input.ts')).href)) as { decodeEmbeddings: Decode };
  variants.push([String(args.compare), other.decodeEmbeddings]);
}
for (let r = 1; r <= Number(args.rounds); r++) {
  for (const [name, decode] of variants) {
    const t = performance.now();
    for (let k = 0; k < 50; k++) decode(bodies, dim, 1e4, (i) => `items[${i}].embedding`);
    console.log(`round ${r}, ${name}: ${((performance.now() - t) / 50).toFixed(2)} ms per ${n} embeddings`);
  }
}
