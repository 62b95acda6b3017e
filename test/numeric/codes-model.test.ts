import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { buildCodesModel, firstIndexAsArgMin } from '../../src/numeric/codes-model.ts';
import { GraphBuilder } from '../../src/numeric/onnx-builder.ts';
import { buildResidualEncoder } from '../../src/numeric/residual-encoder.ts';
import { repoRoot } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const OPTIONS: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' };
const opsOf = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);

async function codesOf(bytes: Uint8Array, x: Float32Array, n: number, dim: number): Promise<BigInt64Array> {
  const session = await ort.InferenceSession.create(bytes, OPTIONS);
  try {
    return (await session.run({ embedding: new ort.Tensor('float32', x, [n, dim]) }, ['codes'])).codes!.data as BigInt64Array;
  } finally {
    await session.release();
  }
}

/** Rows that sit on codewords, halfway between two, and at random: ties and near-ties at every level. */
function probeRows(codebooks: Float32Array[], dim: number, random: number, seed: number): { x: Float32Array; n: number } {
  const c0 = codebooks[0]!;
  const k0 = c0.length / dim;
  const rows: Float32Array[] = [];
  for (let i = 0; i < k0; i++) rows.push(c0.subarray(i * dim, (i + 1) * dim));
  for (let i = 0; i + 1 < k0; i++) rows.push(Float32Array.from({ length: dim }, (_, j) => (c0[i * dim + j]! + c0[(i + 1) * dim + j]!) / 2));
  const r = randomMatrix(random, dim, seed);
  for (let i = 0; i < random; i++) rows.push(r.subarray(i * dim, (i + 1) * dim));
  const x = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => x.set(row, i * dim));
  return { x, n: rows.length };
}

for (const normalize of ['none', 'l2'] as const) {
  for (const topM of [1, 4]) {
    test(`RQ-KMeans encoder (normalize ${normalize}, top ${topM}): the codes-only model gives encoder.onnx's codes, ties included, without TopK`, async () => {
      const dim = 8;
      const codebooks = [16, 8, 32].map((k, l) => randomMatrix(k, dim, 10 + l));
      // Duplicate codewords: equal distances, where TopK's lower-index rule and ArgMin's first minimum must agree.
      codebooks[0]!.copyWithin(3 * dim, 5 * dim, 6 * dim);
      codebooks[1]!.copyWithin(0, 7 * dim, 8 * dim);
      codebooks[2]!.fill(0, 4 * dim, 6 * dim);
      const full = buildResidualEncoder({ codebooks, dim, normalize, topM });
      const codesOnly = buildCodesModel(full);
      assert.ok(opsOf(full).includes('TopK'));
      assert.ok(!opsOf(codesOnly).includes('TopK'), `codes-only ops: ${opsOf(codesOnly).join(' ')}`);
      assert.equal(opsOf(codesOnly).filter((op) => op === 'ArgMin').length, 3);
      const session = await ort.InferenceSession.create(codesOnly, OPTIONS);
      assert.deepEqual(session.outputNames, ['codes']);
      await session.release();
      const { x, n } = probeRows(codebooks, dim, 500, 3);
      const want = await codesOf(full, x, n, dim);
      const got = await codesOf(codesOnly, x, n, dim);
      assert.deepEqual(got, want);
      assert.ok(new Set(want).size > 8, 'the probe reaches many codes');
    });
  }
}

for (const model of ['models/default', 'models/rqkmeans-3x256']) {
  test(`${model}: the codes-only model gives encoder.onnx's codes over 2,000 rows, with fewer nodes and no TopK`, async () => {
    const dir = join(repoRoot, model);
    const encoder = readFileSync(join(dir, 'encoder.onnx'));
    const { inputDim: dim } = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const codesOnly = buildCodesModel(encoder);
    assert.ok(!opsOf(codesOnly).includes('TopK'));
    assert.ok(opsOf(codesOnly).length < opsOf(encoder).length);
    const n = 2000;
    const x = randomMatrix(n, dim, 7);
    assert.deepEqual(await codesOf(codesOnly, x, n, dim), await codesOf(encoder, x, n, dim));
  });
}

/** A graph: values, indices = TopK(x, 3, largest); out = Slice(indices, starts, ends, axes=[1]). */
function topKSlice(largest: number, starts: number, ends: number): Uint8Array {
  const g = new GraphBuilder('t');
  const x = g.input('embedding', 'float32', ['N', 6]);
  const [, idx] = g.node('TopK', [x, g.int64([3])], 2, { axis: 1, largest, sorted: 1 }) as [string, string];
  g.output(g.op('Slice', [idx, g.int64([starts]), g.int64([ends]), g.int64([1])]), 'int64', ['N', ends - starts], 'codes');
  return g.serialize({ opset: 17 });
}

test('only a Slice of the first index becomes ArgMin / ArgMax; any other slice of a TopK stays as it is', async () => {
  const x = randomMatrix(50, 6, 5);
  x.copyWithin(6, 0, 6); // two equal rows
  x.fill(0.25, 12, 18); // a row of ties
  for (const largest of [0, 1]) {
    const first = topKSlice(largest, 0, 1);
    assert.deepEqual(opsOf(buildCodesModel(first)).filter((op) => op !== 'Identity'), [largest ? 'ArgMax' : 'ArgMin']);
    assert.deepEqual(await codesOf(buildCodesModel(first), x, 50, 6), await codesOf(first, x, 50, 6));
    const second = topKSlice(largest, 1, 2);
    assert.ok(opsOf(buildCodesModel(second)).includes('TopK'));
    assert.deepEqual(await codesOf(buildCodesModel(second), x, 50, 6), await codesOf(second, x, 50, 6));
  }
  const unsorted = onnxProto.onnx.ModelProto.decode(topKSlice(0, 0, 1));
  unsorted.graph!.node!.find((n) => n.opType === 'TopK')!.attribute!.find((a) => a.name === 'sorted')!.i = 0;
  assert.ok(firstIndexAsArgMin(unsorted.graph!).node!.some((n) => n.opType === 'Slice'), 'an unsorted TopK keeps its Slice');
});

test('an encoder without a codes output is refused with a message naming it', () => {
  const g = new GraphBuilder('t');
  const x = g.input('embedding', 'float32', ['N', 2]);
  g.output(g.op('Identity', [x]), 'float32', ['N', 2], 'latent');
  assert.throws(() => buildCodesModel(g.serialize({ opset: 17 })), /no "codes" output/);
});
