import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import {
  buildResidualEncoder, effectiveTopM, codebookSizesOf, ENCODER_INPUT,
} from '../../src/numeric/residual-encoder.ts';
import { rng } from '../helpers/random.ts';

function randn(n: number, r: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return out;
}

/** Brute-force residual assignment in float64: codes, per-level sorted distances, and the best-vs-second margin. */
function bruteForce(x: Float32Array, n: number, dim: number, codebooks: Float32Array[], l2: boolean) {
  const L = codebooks.length;
  const codes = new Int32Array(n * L);
  const margins = new Float64Array(n * L);
  const dists: Float64Array[] = [];
  const r = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += x[i * dim + j]! ** 2;
    const s = l2 ? 1 / Math.max(Math.sqrt(norm), 1e-12) : 1;
    for (let j = 0; j < dim; j++) r[j] = x[i * dim + j]! * s;
    for (let l = 0; l < L; l++) {
      const C = codebooks[l]!;
      const K = C.length / dim;
      const d = new Float64Array(K);
      let best = -1, b1 = Infinity, b2 = Infinity;
      for (let k = 0; k < K; k++) {
        let acc = 0;
        for (let j = 0; j < dim; j++) acc += (r[j]! - C[k * dim + j]!) ** 2;
        d[k] = acc;
        if (acc < b1) { b2 = b1; b1 = acc; best = k; } else if (acc < b2) b2 = acc;
      }
      codes[i * L + l] = best;
      margins[i * L + l] = b2 - b1;
      dists.push(d.sort());
      for (let j = 0; j < dim; j++) r[j] = r[j]! - C[best * dim + j]!;
    }
  }
  return { codes, margins, dists };
}

async function runEncoder(bytes: Uint8Array, x: Float32Array, n: number, dim: number) {
  const s = await ort.InferenceSession.create(bytes);
  try {
    return await s.run({ [ENCODER_INPUT]: new ort.Tensor('float32', x, [n, dim]) });
  } finally {
    await s.release();
  }
}

for (const normalize of ['l2', 'none'] as const) {
  test(`ONNX residual encoder matches brute force (normalize=${normalize})`, async () => {
    const r = rng(normalize === 'l2' ? 7 : 11);
    const n = 300, dim = 24, sizes = [32, 16, 8], topM = 5;
    const codebooks = sizes.map((k) => randn(k * dim, r));
    const x = randn(n * dim, r);
    const bytes = buildResidualEncoder({ codebooks, dim, normalize, topM });
    const out = await runEncoder(bytes, x, n, dim);
    const L = sizes.length;
    const M = effectiveTopM(topM, sizes);
    assert.deepEqual(out.codes!.dims, [n, L]);
    assert.deepEqual(out.top_codes!.dims, [n, L, M]);
    assert.deepEqual(out.top_distances!.dims, [n, L, M]);
    const codes = out.codes!.data as BigInt64Array;
    const topCodes = out.top_codes!.data as BigInt64Array;
    const topDist = out.top_distances!.data as Float32Array;
    const bf = bruteForce(x, n, dim, codebooks, normalize === 'l2');
    let compared = 0;
    for (let i = 0; i < n; i++) {
      let samePath = true;
      for (let l = 0; l < L && samePath; l++) {
        const got = Number(codes[i * L + l]);
        const want = bf.codes[i * L + l]!;
        assert.equal(Number(topCodes[(i * L + l) * M]), got, `codes and top_codes[:, ${l}, 0] agree (row ${i})`);
        if (got !== want) {
          assert.ok(bf.margins[i * L + l]! < 1e-4, `row ${i} level ${l}: ${got} vs ${want}, margin ${bf.margins[i * L + l]}`);
          samePath = false;
          break;
        }
        const d = bf.dists[i * L + l]!;
        for (let m = 0; m < M; m++) {
          const v = topDist[(i * L + l) * M + m]!;
          assert.ok(Math.abs(v - d[m]!) <= 1e-3 * Math.max(1, d[m]!), `row ${i} level ${l} rank ${m}: ${v} vs ${d[m]}`);
          if (m > 0) assert.ok(v >= topDist[(i * L + l) * M + m - 1]!, 'distances ascend');
        }
      }
      if (samePath) compared++;
    }
    assert.ok(compared >= n - 2, `only ${compared}/${n} rows followed the same residual path`);
  });
}

test('topM is clipped to the smallest codebook; a single level works', async () => {
  const r = rng(3);
  const dim = 4;
  const codebooks = [randn(3 * dim, r)];
  assert.equal(effectiveTopM(10, [3]), 3);
  const bytes = buildResidualEncoder({ codebooks, dim, normalize: 'none', topM: 10 });
  const out = await runEncoder(bytes, randn(2 * dim, r), 2, dim);
  assert.deepEqual(out.top_codes!.dims, [2, 1, 3]);
  // Never run an empty batch: ORT 1.30's CPU TopK divides by zero on N = 0 and the process dies of SIGFPE.
});

test('l2 normalisation maps a zero row to the nearest code of the origin, without NaN', async () => {
  const dim = 3;
  const codebooks = [Float32Array.from([1, 0, 0, 0.1, 0, 0, 0, 0, 2])];
  const out = await runEncoder(buildResidualEncoder({ codebooks, dim, normalize: 'l2', topM: 3 }),
    new Float32Array(dim), 1, dim);
  assert.equal(Number((out.codes!.data as BigInt64Array)[0]), 1);
  for (const v of out.top_distances!.data as Float32Array) assert.ok(Number.isFinite(v));
});

test('bad specs are rejected', () => {
  assert.throws(() => codebookSizesOf([new Float32Array(10)], 4), /not a positive multiple of dim 4/);
  assert.throws(() => buildResidualEncoder({ codebooks: [], dim: 4, normalize: 'none', topM: 1 }), /at least one/);
  assert.throws(() => buildResidualEncoder({ codebooks: [new Float32Array(8)], dim: 4, normalize: 'none', topM: 0 }),
    /topM/);
});

test('the graph sums squares once and ranks each level on the Gemm output; distances keep the row norm', async () => {
  const r = rng(5);
  const dim = 16, sizes = [8, 8, 8, 8];
  const codebooks = sizes.map((k) => randn(k * dim, r));
  for (const normalize of ['l2', 'none'] as const) {
    const bytes = buildResidualEncoder({ codebooks, dim, normalize, topM: 3 });
    const nodes = onnxProto.onnx.ModelProto.decode(bytes).graph!.node!;
    assert.equal(nodes.filter((n) => n.opType === 'ReduceSumSquare').length, 1, `${normalize}: one ReduceSumSquare for ${sizes.length} levels`);
    const gemmOutputs = new Set(nodes.filter((n) => n.opType === 'Gemm').map((n) => n.output![0]));
    const topks = nodes.filter((n) => n.opType === 'TopK');
    assert.equal(topks.length, sizes.length);
    assert.ok(topks.every((n) => gemmOutputs.has(n.input![0]!)), `${normalize}: every TopK ranks a Gemm output`);
  }
  // The distances are full squared distances, not the Gemm's partial ones: a row far from every code has large ones.
  const far = new Float32Array(dim).fill(100);
  const out = await runEncoder(buildResidualEncoder({ codebooks, dim, normalize: 'none', topM: 3 }), far, 1, dim);
  const first = (out.top_distances!.data as Float32Array)[0]!;
  const best = bruteForce(far, 1, dim, codebooks, false).dists[0]![0]!;
  assert.ok(Math.abs(first - best) <= 1e-4 * best, `level 0 distance ${first} vs ${best}`);
});
