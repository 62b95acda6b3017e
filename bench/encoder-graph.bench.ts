/**
 * A bundle's encoder.onnx against the codes-only model the encoder pool derives from it for upserts
 * (src/numeric/codes-model.ts) and, for an RQ-KMeans bundle, against the same codebooks through today's builder
 * (src/numeric/residual-encoder.ts), in the same run: rows/s of one ORT session on one thread, alternated over
 * rounds, whether they agree (codes; for the rebuilt one also top codes and distances), and where each spends its
 * run (ORT's own profiler, kernel time by operator). The bundle on disk is not changed: a rebuilt encoder.onnx
 * would be a new bundle digest. Last, one-row runs of the latent query model a beam query runs
 * (src/numeric/beam-query-graph.ts) with its codes by ArgMin (as served) and from the encoder's TopK, alternated.
 *
 *   node --import tsx bench/encoder-graph.bench.ts [--model models/rqkmeans-3x256] [--rows 2500] [--runs 10] [--rounds 3]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { buildLatentQueryModel } from '../src/numeric/beam-query-graph.ts';
import { buildCodesModel } from '../src/numeric/codes-model.ts';
import { buildResidualEncoder, ENCODER_INPUT } from '../src/numeric/residual-encoder.ts';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { readRqKmeansModel } from '../src/train/export.ts';
import { benchArgs, markdownTable } from './lib.ts';

const args = benchArgs({
  model: { type: 'string', default: 'models/rqkmeans-3x256' }, rows: { type: 'string', default: '2500' },
  runs: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' },
});
const bundle = await loadBundle(String(args.model));
const m = bundle.manifest;
const shipped = readFileSync(bundle.encoderPath);
const rqkmeans = m.method === 'rqkmeans' ? await readRqKmeansModel(bundle) : undefined; // other methods' encoders hold more
const rebuilt = rqkmeans && buildResidualEncoder({ ...rqkmeans, topM: m.topM });

const N = Number(args.rows);
const { items } = await syntheticCatalog({ n: N, q: 1, dim: m.inputDim, seed: 1 });
const feeds = { [ENCODER_INPUT]: new ort.Tensor('float32', items.subarray(0, N * m.inputDim), [N, m.inputDim]) };
const graphs = [
  { name: 'as exported (encoder.onnx)', bytes: shipped }, { name: 'its codes alone (codes-model.ts)', bytes: buildCodesModel(shipped) },
  ...(rebuilt ? [{ name: 'same codebooks, today\'s builder', bytes: rebuilt }] : []),
];
const sessionOf = (bytes: Uint8Array, profilePrefix?: string) => ort.InferenceSession.create(bytes,
  { intraOpNumThreads: 1, interOpNumThreads: 1, enableProfiling: profilePrefix !== undefined, profileFilePrefix: profilePrefix });
const sessions = await Promise.all(graphs.map((g) => sessionOf(g.bytes)));

const [a, codesOnly, b] = await Promise.all(sessions.map((s) => s.run(feeds))) as ort.InferenceSession.ReturnType[];
const differing = (x: ArrayLike<bigint | number>, y: ArrayLike<bigint | number>) => Array.from(x).filter((v, i) => v !== y[i]).length;
const codesOf = (out: ort.InferenceSession.ReturnType) => out.codes!.data as BigInt64Array;
console.log(`${args.model}: ${m.levels} x [${m.codebookSizes.join(', ')}] over ${m.inputDim}-d, ${N} rows of sidx bench's catalog (seed 1): `
  + `codes-only codes differing ${differing(codesOf(a!), codesOf(codesOnly!))} of ${N * m.levels}`);
if (b) {
  const da = a!.top_distances!.data as Float32Array;
  const db = b.top_distances!.data as Float32Array;
  let maxDistanceDiff = 0;
  for (let i = 0; i < da.length; i++) maxDistanceDiff = Math.max(maxDistanceDiff, Math.abs(da[i]! - db[i]!));
  console.log(`rebuilt: codes differing ${differing(codesOf(a!), codesOf(b))} of ${N * m.levels}, top codes differing `
    + `${differing(a!.top_codes!.data as BigInt64Array, b.top_codes!.data as BigInt64Array)} of ${da.length}, largest distance difference ${maxDistanceDiff.toExponential(2)}`);
}

const runs = Number(args.runs);
const rowsPerSecond: number[][] = graphs.map(() => []);
for (let round = 0; round < Number(args.rounds); round++) {
  for (const [i, s] of sessions.entries()) {
    await s.run(feeds);
    const t0 = performance.now();
    for (let r = 0; r < runs; r++) await s.run(feeds);
    rowsPerSecond[i]!.push((N * runs) / ((performance.now() - t0) / 1000));
  }
}
console.log(markdownTable(['encoder graph', 'rows/s per round (1 thread)', 'vs as exported'], graphs.map((g, i) => [
  g.name, rowsPerSecond[i]!.map((v) => Math.round(v)).join(' / '),
  `${(rowsPerSecond[i]!.reduce((x, y) => x + y) / rowsPerSecond[0]!.reduce((x, y) => x + y)).toFixed(2)}x`])));

/** ORT's kernel time by operator over `runs` runs, as shares of the total. */
async function operatorShares(bytes: Uint8Array, tag: number): Promise<Map<string, number>> {
  const prefix = `sidx-encoder-graph-${process.pid}-${tag}`;
  const s = await sessionOf(bytes, join(tmpdir(), prefix));
  for (let r = 0; r < runs; r++) await s.run(feeds);
  s.endProfiling(); // writes the file; the Node binding does not return its name
  await s.release();
  const file = readdirSync(tmpdir()).find((f) => f.startsWith(prefix));
  if (file === undefined) throw new Error(`ORT wrote no profile ${prefix}* in ${tmpdir()}`);
  const path = join(tmpdir(), file);
  const events = JSON.parse(readFileSync(path, 'utf8')) as Array<{ cat?: string; name: string; dur: number; args?: { op_name?: string } }>;
  rmSync(path, { force: true });
  const byOp = new Map<string, number>();
  for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) byOp.set(e.args?.op_name ?? '?', (byOp.get(e.args?.op_name ?? '?') ?? 0) + e.dur);
  const total = [...byOp.values()].reduce((x, y) => x + y, 0);
  return new Map([...byOp].map(([op, us]) => [op, us / total]));
}
const shares: Array<Map<string, number>> = [];
for (const [i, g] of graphs.entries()) shares.push(await operatorShares(g.bytes, i));
const ops = [...new Set(shares.flatMap((s) => [...s.keys()]))].sort((x, y) => (shares[0]!.get(y) ?? 0) - (shares[0]!.get(x) ?? 0));
console.log(markdownTable(['operator', ...graphs.map((g) => `${g.name}: share of kernel time`)],
  ops.filter((op) => shares.some((s) => (s.get(op) ?? 0) >= 0.005)).map((op) => [op, ...shares.map((s) => `${(100 * (s.get(op) ?? 0)).toFixed(1)}%`)])));
await Promise.all(sessions.map((s) => s.release()));

/** A beam query's one-row run of the latent query model, with its codes by ArgMin and as encoder.onnx takes them. */
if (bundle.beamPath !== undefined) {
  const beamBytes = readFileSync(bundle.beamPath);
  const variants = [{ name: 'codes by ArgMin (served)', argMinCodes: true }, { name: 'codes from the encoder\'s TopK', argMinCodes: false }];
  const latent = await Promise.all(variants.map((v) => sessionOf(buildLatentQueryModel(shipped, beamBytes, m.levels, { argMinCodes: v.argMinCodes }).model)));
  const one = { [ENCODER_INPUT]: new ort.Tensor('float32', items.subarray(0, m.inputDim), [1, m.inputDim]) };
  const micros: number[][] = variants.map(() => []);
  for (let round = 0; round < Number(args.rounds) * 3; round++) {
    for (const [i, s] of latent.entries()) {
      const t0 = performance.now();
      for (let r = 0; r < 300; r++) await s.run(one);
      micros[i]!.push(((performance.now() - t0) * 1000) / 300);
    }
  }
  const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
  console.log(markdownTable(['latent query model (1 row per run)', 'µs per run, median of rounds', 'rounds'],
    variants.map((v, i) => [v.name, median(micros[i]!).toFixed(1), micros[i]!.map((x) => x.toFixed(0)).join(' / ')])));
  await Promise.all(latent.map((s) => s.release()));
}
