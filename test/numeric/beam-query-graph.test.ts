import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { buildBeamGraph } from '../../src/numeric/beam-graph.ts';
import { beamWidths, buildBeamQueryModel, buildLatentQueryModel, latentCrossOutput, packedLengths, PACKED_OUTPUTS } from '../../src/numeric/beam-query-graph.ts';
import { buildResidualEncoder } from '../../src/numeric/residual-encoder.ts';
import { repoRoot } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const OPTIONS: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' };
const bytesOf = (a: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** int64 tensor data as int32 (the codes are small). */
const int32 = (t: ort.Tensor) => Int32Array.from(t.data as BigInt64Array, (v) => Number(v));

for (const model of ['models/default', 'models/rqkmeans-3x256']) {
  test(`${model}: the merged beam-query model answers bit for bit like encoder.onnx then beam.onnx`, async () => {
    const dir = join(repoRoot, model);
    const encoderBytes = readFileSync(join(dir, 'encoder.onnx'));
    const beamBytes = readFileSync(join(dir, 'beam.onnx'));
    const { inputDim: dim, levels, codebookSizes } = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const encoder = await ort.InferenceSession.create(encoderBytes, OPTIONS);
    const beam = await ort.InferenceSession.create(beamBytes, OPTIONS);
    const packed = await ort.InferenceSession.create(buildBeamQueryModel(encoderBytes, beamBytes, levels), OPTIONS);
    const noDedupe = await ort.InferenceSession.create(buildBeamQueryModel(encoderBytes, beamBytes, levels, { dedupe: false }), OPTIONS);
    const unpacked = await ort.InferenceSession.create(buildBeamQueryModel(encoderBytes, beamBytes, levels, { packed: false }), OPTIONS);
    try {
      assert.deepEqual(packed.outputNames, [PACKED_OUTPUTS.codes, PACKED_OUTPUTS.scores]);
      let seed = 1;
      for (const n of [1, 3]) {
        for (const width of [1, 5, 32, 300]) {
          for (const normWeight of [1, 0, 0.5]) {
            const x = randomMatrix(n, dim, seed++);
            const embedding = new ort.Tensor('float32', x, [n, dim]);
            const feeds = {
              embedding, beam_width: new ort.Tensor('int64', BigInt64Array.of(BigInt(width)), [1]),
              norm_weight: new ort.Tensor('float32', Float32Array.of(normWeight), [1]),
            };
            const own = int32((await encoder.run({ embedding })).codes!);
            const apart = await beam.run(feeds);
            const widths = beamWidths(width, codebookSizes);
            const wantCodes = [own, ...widths.map((_, l) => int32(apart[`beam_codes_${l + 1}`]!))];
            const wantScores = widths.map((_, l) => apart[`beam_scores_${l + 1}`]!.data as Float32Array);
            const at = `n ${n} width ${width} normWeight ${normWeight}`;
            for (const [name, session] of [['packed', packed], ['packed without dedupe', noDedupe]] as const) {
              const out = await session.run(feeds);
              const codes = out[PACKED_OUTPUTS.codes]!.data as Int32Array;
              const scores = out[PACKED_OUTPUTS.scores]!.data as Float32Array;
              assert.deepEqual({ codes: codes.length, scores: scores.length }, packedLengths(n, widths), `${name} ${at}: lengths`);
              assert.ok(bytesOf(codes).equals(Buffer.concat(wantCodes.map(bytesOf))), `${name} ${at}: codes`);
              assert.ok(bytesOf(scores).equals(Buffer.concat(wantScores.map(bytesOf))), `${name} ${at}: scores, bit for bit`);
            }
            const out = await unpacked.run(feeds);
            assert.deepEqual(int32(out.codes!), own, `unpacked ${at}: codes`);
            widths.forEach((w, l) => {
              assert.deepEqual(out[`beam_codes_${l + 1}`]!.dims, [n, w, l + 1]);
              assert.deepEqual(int32(out[`beam_codes_${l + 1}`]!), wantCodes[l + 1], `unpacked ${at}: level ${l + 1} codes`);
              assert.ok(bytesOf(out[`beam_scores_${l + 1}`]!.data as Float32Array).equals(bytesOf(wantScores[l]!)), `unpacked ${at}: level ${l + 1} scores`);
            });
          }
        }
      }
    } finally {
      await Promise.all([encoder, beam, packed, noDedupe, unpacked].map((s) => s.release()));
    }
  });
}

test('the merged model shares the encoder\'s initializers, drops the top-M nodes and refuses parts it cannot merge', () => {
  const dir = join(repoRoot, 'models/default');
  const encoderBytes = readFileSync(join(dir, 'encoder.onnx'));
  const beamBytes = readFileSync(join(dir, 'beam.onnx'));
  const decode = (b: Uint8Array) => onnxProto.onnx.ModelProto.decode(b).graph as onnxProto.onnx.GraphProto;
  const merged = decode(buildBeamQueryModel(encoderBytes, beamBytes, 3));
  const [enc, beam] = [decode(encoderBytes), decode(beamBytes)];
  const names = new Set(merged.initializer.map((t) => t.name));
  assert.ok(names.has('enc0_w') && !names.has('beam/enc0_w'), 'the encoder MLP weights are stored once');
  assert.ok([...names].some((n) => n?.startsWith('beam/')), 'the beam\'s own tables keep their prefixed names');
  assert.ok(merged.node.length < enc.node.length + beam.node.length, 'nodes only the top-M outputs need are gone');
  assert.ok(!merged.node.some((n) => n.output?.includes('top_codes')), 'no top_codes node');
  assert.deepEqual(merged.input.map((i) => i.name), ['embedding', 'beam_width', 'norm_weight']);

  const codebooks = [randomMatrix(4, 3, 1), randomMatrix(4, 3, 2)];
  const small = buildResidualEncoder({ codebooks, dim: 3, normalize: 'l2', topM: 2 });
  const beam18 = buildBeamGraph({ codebooks, inputDim: 3, normalize: 'l2', opset: 18 });
  assert.throws(() => buildBeamQueryModel(small, beam18, 2), /opset 17, IR 8\) and beam\.onnx \(opset 18/);
  const beam17 = buildBeamGraph({ codebooks, inputDim: 3, normalize: 'l2' });
  assert.throws(() => buildBeamQueryModel(small, beam17, 3), /beam\.onnx: outputs/);
  assert.ok(buildBeamQueryModel(small, beam17, 2).length > 0);
});

test('the latent query model outputs the encoder\'s quantizer Gemms where they quantise with the beam\'s codebooks', async () => {
  for (const model of ['models/default', 'models/rqkmeans-3x256']) {
    const dir = join(repoRoot, model);
    const encoderBytes = readFileSync(join(dir, 'encoder.onnx'));
    const { levels, codebookSizes } = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const latent = buildLatentQueryModel(encoderBytes, readFileSync(join(dir, 'beam.onnx')), levels);
    assert.deepEqual(latent.crossNorms?.map((n) => n.length), codebookSizes, `${model}: ||c||^2 per level`);
    latent.crossNorms!.forEach((norms, l) => {
      const book = latent.codebooks[l]!;
      norms.forEach((v, k) => {
        const sq = book.subarray(k * latent.dim, (k + 1) * latent.dim).reduce((a, x) => a + x * x, 0);
        assert.ok(Math.abs(v - sq) <= 1e-5 * Math.max(1, sq), `${model} level ${l} code ${k}: ${v} vs ${sq}`);
      });
    });
    // The codes come from ArgMin, not the encoder's TopK (codes-model.ts), and equal encoder.onnx's.
    assert.ok(!onnxProto.onnx.ModelProto.decode(latent.model).graph!.node!.some((n) => n.opType === 'TopK'), `${model}: no TopK`);
    const session = await ort.InferenceSession.create(latent.model, OPTIONS);
    const encoder = await ort.InferenceSession.create(encoderBytes, OPTIONS);
    const many = randomMatrix(500, 512, 9);
    const embedding = new ort.Tensor('float32', many, [500, 512]);
    assert.deepEqual((await session.run({ embedding })).query_codes!.data, int32((await encoder.run({ embedding })).codes!), `${model}: codes`);
    await encoder.release();
    // The outputs are the Gemm results: with the own codes they give the codebook dot products of the latent.
    const x = randomMatrix(2, JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).inputDim, 8);
    const out = await session.run({ embedding: new ort.Tensor('float32', x, [2, x.length / 2]) });
    const z = out.query_latent!.data as Float32Array;
    const own = out.query_codes!.data as Int32Array;
    for (let i = 0; i < 2; i++) {
      const r = Float64Array.from(z.subarray(i * latent.dim, (i + 1) * latent.dim));
      for (let l = 0; l < levels; l++) {
        const K = codebookSizes[l];
        const g = out[latentCrossOutput(l)]!.data as Float32Array;
        for (const k of [0, K - 1]) {
          const c = latent.codebooks[l]!.subarray(k * latent.dim, (k + 1) * latent.dim);
          const want = -2 * c.reduce((a, v, d) => a + v * r[d]!, 0) + latent.crossNorms![l]![k]!;
          assert.ok(Math.abs(g[i * K + k]! - want) <= 1e-4 * Math.max(1, Math.abs(want)), `${model} row ${i} level ${l} code ${k}`);
        }
        const a = own[i * levels + l]!;
        for (let d = 0; d < latent.dim; d++) r[d]! -= latent.codebooks[l]![a * latent.dim + d]!;
      }
    }
  }
  // An encoder over other codebooks than the beam's: no outputs, the addon reads the codebooks.
  const books = [randomMatrix(4, 3, 1), randomMatrix(4, 3, 2)];
  const other = [books[0]!, randomMatrix(4, 3, 9)];
  const mismatched = buildLatentQueryModel(buildResidualEncoder({ codebooks: books, dim: 3, normalize: 'l2', topM: 2 }),
    buildBeamGraph({ codebooks: other, inputDim: 3, normalize: 'l2' }), 2);
  assert.equal(mismatched.crossNorms, undefined);
  assert.ok(!onnxProto.onnx.ModelProto.decode(mismatched.model).graph!.output!.some((o) => o.name === latentCrossOutput(0)));
  const matched = buildLatentQueryModel(buildResidualEncoder({ codebooks: books, dim: 3, normalize: 'l2', topM: 2 }),
    buildBeamGraph({ codebooks: books, inputDim: 3, normalize: 'l2' }), 2);
  assert.equal(matched.crossNorms?.length, 2);
});
