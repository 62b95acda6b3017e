import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import {
  BEAM_INPUTS, beamCodesOutput, beamReference, beamScoresOutput, buildBeamGraph,
} from '../../src/numeric/beam-graph.ts';
import { buildResidualEncoder, ENCODER_INPUT } from '../../src/numeric/residual-encoder.ts';
import { randomMatrix } from '../helpers/random.ts';

async function runBeam(bytes: Uint8Array, x: Float32Array, n: number, dim: number, width: number, w: number) {
  const s = await ort.InferenceSession.create(bytes);
  try {
    return await s.run({
      [BEAM_INPUTS.embedding]: new ort.Tensor('float32', x, [n, dim]),
      [BEAM_INPUTS.width]: new ort.Tensor('int64', BigInt64Array.of(BigInt(width)), [1]),
      [BEAM_INPUTS.normWeight]: new ort.Tensor('float32', Float32Array.of(w), [1]),
    });
  } finally {
    await s.release();
  }
}

function rowOf(x: Float32Array, i: number, dim: number, l2: boolean): Float64Array {
  const z = Float64Array.from(x.subarray(i * dim, (i + 1) * dim));
  if (!l2) return z;
  const norm = Math.max(Math.sqrt(z.reduce((a, v) => a + v * v, 0)), 1e-12);
  return z.map((v) => v / norm);
}

const cases = [
  { name: 'L2 scores, normalised input, width below K', normalize: 'l2', w: 1, width: 6, sizes: [8, 6, 5] },
  { name: 'partial inner product, raw input', normalize: 'none', w: 0, width: 6, sizes: [8, 6, 5] },
  { name: 'width above K_1 and above the number of prefixes', normalize: 'none', w: 1, width: 50, sizes: [4, 3, 7] },
  { name: 'single level', normalize: 'none', w: 1, width: 3, sizes: [9] },
  { name: 'mixed weight, four levels', normalize: 'l2', w: 0.5, width: 10, sizes: [6, 5, 4, 3] },
] as const;

for (const c of cases) for (const lut of [true, false]) {
  test(`beam graph matches a brute-force JS beam: ${c.name} (${lut ? 'dot-product tables' : 'Gemm per level'})`, async () => {
    const dim = 7;
    const n = 40;
    const codebooks = c.sizes.map((k, l) => randomMatrix(k, dim, 100 + l, 0.6 ** l));
    const x = randomMatrix(n, dim, 7);
    const bytes = buildBeamGraph({ codebooks, inputDim: dim, normalize: c.normalize, lutMaxBytes: lut ? undefined : 0 });
    const out = await runBeam(bytes, x, n, dim, c.width, c.w);
    for (let i = 0; i < n; i++) {
      const ref = beamReference(rowOf(x, i, dim, c.normalize === 'l2'), codebooks, dim, c.width, c.w);
      ref.forEach((level, l) => {
        const codes = out[beamCodesOutput(l + 1)]!;
        const scores = out[beamScoresOutput(l + 1)]!;
        const width = level.codes.length;
        assert.deepEqual(codes.dims, [n, width, l + 1], `level ${l + 1} shape`);
        const data = codes.data as BigInt64Array;
        const got = Array.from({ length: width }, (_, b) =>
          Array.from({ length: l + 1 }, (_, j) => Number(data[(i * width + b) * (l + 1) + j]!)));
        assert.deepEqual(got, level.codes, `row ${i} level ${l + 1} prefixes`);
        level.scores.forEach((s, b) => {
          const v = (scores.data as Float32Array)[i * width + b]!;
          assert.ok(Math.abs(v - s) <= 1e-4 * Math.max(1, Math.abs(s)), `row ${i} level ${l + 1} score ${b}: ${v} vs ${s}`);
        });
      });
    }
  });
}

test('the best beam entry at width 1 is the greedy encoder code; wider beams never score worse', async () => {
  const dim = 12;
  const n = 64;
  const codebooks = [16, 16, 16].map((k, l) => randomMatrix(k, dim, 5 + l, 0.5 ** l));
  const x = randomMatrix(n, dim, 9);
  const enc = await ort.InferenceSession.create(buildResidualEncoder({ codebooks, dim, normalize: 'l2', topM: 4 }));
  const greedy = (await enc.run({ [ENCODER_INPUT]: new ort.Tensor('float32', x, [n, dim]) })).codes!.data as BigInt64Array;
  await enc.release();
  const bytes = buildBeamGraph({ codebooks, inputDim: dim, normalize: 'l2' });
  const one = await runBeam(bytes, x, n, dim, 1, 1);
  assert.deepEqual(Array.from(one[beamCodesOutput(3)]!.data as BigInt64Array), Array.from(greedy));
  const wide = await runBeam(bytes, x, n, dim, 32, 1);
  const s1 = one[beamScoresOutput(3)]!.data as Float32Array;
  const s32 = wide[beamScoresOutput(3)]!.data as Float32Array;
  for (let i = 0; i < n; i++) assert.ok(s32[i * 32]! <= s1[i]! + 1e-5, `row ${i}: beam best ${s32[i * 32]} > greedy ${s1[i]}`);
});
