import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { seededVaeBundle } from '../../src/bench/vae-bundle.ts';
import { clusteredEmbeddings } from '../../src/eval/synthetic.ts';
import { readEncoderInitializers } from '../../src/train/export.ts';

/** Reference encoder in float64: L2-normalise, MLP (ReLU but last), per level argmin of the squared distance. */
function referenceCodes(x: Float32Array, dim: number, layers: Array<{ w: Float32Array; b: Float32Array }>,
  codebooks: Float32Array[], h: number): number[][] {
  const out: number[][] = [];
  for (let o = 0; o < x.length; o += dim) {
    let v = Array.from(x.subarray(o, o + dim));
    const norm = Math.max(Math.hypot(...v), 1e-12);
    v = v.map((a) => a / norm);
    layers.forEach(({ w, b }, i) => {
      const outDim = b.length;
      const next = Array.from(b, Number);
      for (let r = 0; r < v.length; r++) for (let c = 0; c < outDim; c++) next[c]! += v[r]! * w[r * outDim + c]!;
      v = i + 1 < layers.length ? next.map((a) => Math.max(0, a)) : next;
    });
    const codes: number[] = [];
    for (const cb of codebooks) {
      let best = 0;
      let bestD = Infinity;
      for (let k = 0; k < cb.length / h; k++) {
        let d = 0;
        for (let j = 0; j < h; j++) d += (v[j]! - cb[k * h + j]!) ** 2;
        if (d < bestD) [best, bestD] = [k, d];
      }
      codes.push(best);
      v = v.map((a, j) => a - cb[best * h + j]!);
    }
    out.push(codes);
  }
  return out;
}

test('seededVaeBundle: an RQ-VAE bundle whose encoder.onnx reproduces the reference encoder, codes spread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidx-vae-bundle-'));
  try {
    const dim = 8;
    const shape = { inputDim: dim, hidden: [8], latentDim: 4, codebookSizes: [16, 16] };
    const sample = clusteredEmbeddings({ n: 32, dim, seed: 3, clusters: 8 });
    const bundle = await seededVaeBundle({ dir, shape, seed: 5, sample, normalize: 'l2' });
    assert.equal(bundle.manifest.method, 'rqvae');
    assert.deepEqual(bundle.manifest.codebookSizes, [16, 16]);

    const inits = await readEncoderInitializers(bundle, () => true);
    const layers = [0, 1].map((i) => ({ w: inits.get(`enc${i}_w`)!.data, b: inits.get(`enc${i}_b`)!.data }));
    assert.deepEqual(inits.get('enc0_w')!.dims, [8, 8]);
    const codebooks = [0, 1].map((l) => inits.get(`codebook_${l}`)!.data);

    const n = 64;
    const x = clusteredEmbeddings({ n, dim, seed: 11, clusters: 8 });
    const session = await ort.InferenceSession.create(bundle.encoderPath);
    const got = (await session.run({ embedding: new ort.Tensor('float32', x, [n, dim]) })).codes!.data as BigInt64Array;
    await session.release();
    const want = referenceCodes(x, dim, layers, codebooks, shape.latentDim);
    assert.deepEqual(Array.from({ length: n }, (_, i) => [Number(got[2 * i]), Number(got[2 * i + 1])]), want);
    for (let l = 0; l < 2; l++) assert.ok(new Set(want.map((c) => c[l])).size >= 4, `level ${l} codes spread`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
