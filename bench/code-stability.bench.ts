/**
 * How stable a bundle's codes are under the noise of `sidx bench`'s synthetic catalog: each of the first 1,024
 * scientific text embeddings (the catalog's cluster centres) and `--copies` noisy copies of it (isotropic Gaussian
 * noise of norm about 0.6, then L2-normalised, as clusteredEmbeddings draws items) go through the bundle's
 * encoder.onnx; per level, the share of copies whose code prefix up to that level equals the centre's ("prefix") and
 * whose code at that level alone does ("level"). Exact-SID and Hamming-1 candidates find a query's neighbours only
 * where these are high (docs/rqvae.md, "Linear encoder over the principal subspace").
 *
 *   SIDX_SHARED_DATA=../shared/data node --import tsx bench/code-stability.bench.ts MODEL_DIR... [--copies 8] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { readNpy } from '../src/io/npy.ts';
import { seededGaussian } from '../src/random.ts';
import { l2NormalizeRows } from '../src/train/rqkmeans.ts';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2), allowPositionals: true, strict: true,
  options: { copies: { type: 'string', default: '8' }, centres: { type: 'string', default: '1024' }, json: { type: 'string' } },
});
const copies = Number(values.copies);
const shared = resolve(process.env.SIDX_SHARED_DATA ?? '../shared/data', 'scientific/text_emb.npy');
const embeddings = await readNpy(shared);
const dim = embeddings.shape[1]!;
const k = Math.min(Number(values.centres), embeddings.shape[0]!);
const centres = l2NormalizeRows(embeddings.data.subarray(0, k * dim), dim);
const gauss = seededGaussian(7);
const sigma = 0.6 / Math.sqrt(dim);
const noisy = new Float32Array(k * copies * dim);
for (let i = 0; i < k; i++) {
  for (let c = 0; c < copies; c++) {
    const o = (i * copies + c) * dim;
    for (let j = 0; j < dim; j++) noisy[o + j] = centres[i * dim + j]! + sigma * gauss();
  }
}
const noisyRows = l2NormalizeRows(noisy, dim);

const results = [];
for (const dir of positionals) {
  const session = await ort.InferenceSession.create(resolve(dir, 'encoder.onnx'));
  const codesOf = async (x: Float32Array) => {
    const out = await session.run({ embedding: new ort.Tensor('float32', x, [x.length / dim, dim]) });
    return { codes: out.codes!.data as BigInt64Array, levels: out.codes!.dims[1]! };
  };
  const clean = await codesOf(centres);
  const moved = await codesOf(noisyRows);
  await session.release();
  const levels = clean.levels;
  const prefix = new Array<number>(levels).fill(0);
  const level = new Array<number>(levels).fill(0);
  for (let i = 0; i < k; i++) {
    for (let c = 0; c < copies; c++) {
      let same = true;
      for (let l = 0; l < levels; l++) {
        const equal = clean.codes[i * levels + l] === moved.codes[(i * copies + c) * levels + l];
        if (equal) level[l]! += 1;
        same &&= equal;
        if (same) prefix[l]! += 1;
      }
    }
  }
  const total = k * copies;
  const result = { model: dir, centres: k, copies, prefix: prefix.map((v) => v / total), level: level.map((v) => v / total) };
  results.push(result);
  console.log(`${dir.padEnd(32)} prefix same ${result.prefix.map((v) => v.toFixed(3)).join(' / ')}   level same ${result.level.map((v) => v.toFixed(3)).join(' / ')}`);
}
if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
