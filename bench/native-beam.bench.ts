/**
 * The addon's beam (native/src/beam_search.cc) two ways, per shipped model: its codeword dot products computed from
 * the codebooks (LevelDots, rows in blocks of 8) or derived from the encoder's quantizer outputs that the latent
 * query model returns with the latent (CrossDots: the level Gemm results and the C_j C_l^T tables; no codebook read).
 * One ORT run of the latent query model gives z, the own codes and the Gemm outputs of `sidx bench`'s synthetic
 * queries; then `BeamSearch.search` runs on them one call of R rows at a time, the two ways alternated over rounds.
 * Prints µs per row (median over rounds) and how many beam prefixes the two ways disagree on.
 *
 *   node --import tsx bench/native-beam.bench.ts [--models models/rqkmeans-3x256,models/default] [--rows-per-call 1,3,8,32]
 *        [--width 32] [--rounds 5] [--queries 256]
 */
import { readFileSync } from 'node:fs';

import ort from 'onnxruntime-node';
import { beamWidths, buildLatentQueryModel, latentCrossOutput, LATENT_QUERY_OUTPUTS, packedLengths } from '../src/numeric/beam-query-graph.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { loadFaissBinding } from '../src/vector/binding.ts';
import { benchArgs, markdownTable } from './lib.ts';

const args = benchArgs({
  models: { type: 'string', default: 'models/rqkmeans-3x256,models/default' }, 'rows-per-call': { type: 'string', default: '1,3,8,32' },
  width: { type: 'string', default: '32' }, rounds: { type: 'string', default: '5' }, queries: { type: 'string', default: '256' },
});
const width = Number(args.width);
const Q = Number(args.queries);
const { BeamSearch } = loadFaissBinding();
const rows: Array<Array<string | number>> = [];
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

for (const dir of String(args.models).split(',')) {
  const bundle = await loadBundle(dir);
  const m = bundle.manifest;
  const latent = buildLatentQueryModel(readFileSync(bundle.encoderPath), readFileSync(bundle.beamPath!), m.levels);
  if (!latent.crossNorms) throw new Error(`${dir}: its encoder does not quantise with the beam's codebooks`);
  const session = await ort.InferenceSession.create(latent.model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const { queries } = await syntheticCatalog({ n: 1, q: Q, dim: m.inputDim, seed: 1 });
  const out = await session.run({ embedding: new ort.Tensor('float32', queries.subarray(0, Q * m.inputDim), [Q, m.inputDim]) });
  const z = out[LATENT_QUERY_OUTPUTS.latent]!.data as Float32Array;
  const own = out[LATENT_QUERY_OUTPUTS.codes]!.data as Int32Array;
  const cross = m.codebookSizes.map((_, l) => out[latentCrossOutput(l)]!.data as Float32Array);
  const normWeight = m.method === 'rqkmeans' && m.metric === 'ip' ? 0 : 1; // as retrieve-steps.ts beamNormWeight
  const search = new BeamSearch(latent.codebooks, latent.dim, 64 << 20, latent.crossNorms);
  for (const perCall of String(args['rows-per-call']).split(',').map(Number)) {
    const calls = Math.floor(Q / perCall);
    const lengths = packedLengths(perCall, beamWidths(width, m.codebookSizes));
    const outs = { codebooks: new Int32Array(lengths.codes - perCall * m.levels), cross: new Int32Array(lengths.codes - perCall * m.levels) };
    const scores = new Float32Array(lengths.scores);
    const times: Record<'codebooks' | 'cross', number[]> = { codebooks: [], cross: [] };
    let disagree = 0;
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const way of ['codebooks', 'cross'] as const) {
        const t0 = performance.now();
        for (let c = 0; c < calls; c++) {
          const zs = z.subarray(c * perCall * latent.dim, (c + 1) * perCall * latent.dim);
          if (way === 'codebooks') {
            search.search(zs, perCall, width, normWeight, outs.codebooks, scores);
          } else {
            const crossRows = cross.map((g, l) => g.subarray(c * perCall * m.codebookSizes[l]!, (c + 1) * perCall * m.codebookSizes[l]!));
            search.search(zs, perCall, width, normWeight, outs.cross, scores, own.subarray(c * perCall * m.levels, (c + 1) * perCall * m.levels), crossRows);
          }
        }
        times[way].push((performance.now() - t0) * 1000 / (calls * perCall));
      }
      if (round === 0) disagree = outs.codebooks.reduce((n, v, i) => n + (v !== outs.cross[i] ? 1 : 0), 0);
    }
    rows.push([m.id, perCall, median(times.codebooks).toFixed(1), median(times.cross).toFixed(1),
      (median(times.codebooks) / median(times.cross)).toFixed(2), `${disagree} of ${outs.cross.length}`]);
  }
  await session.release();
}
console.log(`Beam width ${width}, ${Q} synthetic queries, µs per row (median of ${args.rounds} alternated rounds):\n`);
console.log(markdownTable(['model', 'rows per call', 'from the codebooks', 'from the quantizer outputs', 'speed-up', 'prefix codes differing (last call)'], rows));
