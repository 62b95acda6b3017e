import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beamReference } from '../../src/numeric/beam-graph.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { exportRqKmeansBundle } from '../../src/train/export.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const training = { source: 'random', command: 'test', seed: 0, dataDigest: '0'.repeat(64) };

function model(dim: number, sizes: number[], seed: number) {
  return { dim, normalize: 'l2' as const, codebookSizes: sizes, codebooks: sizes.map((k, l) => randomMatrix(k, dim, seed + l, 0.5 ** l)) };
}

test('rqkmeans bundles carry beam.onnx outside the bundle digest; a beam built for another encoder is refused', async () => {
  const tmp = tempDir();
  try {
    const a = await exportRqKmeansBundle({ dir: join(tmp.dir, 'a'), id: 'a', model: model(6, [4, 4], 1), training });
    const b = await exportRqKmeansBundle({ dir: join(tmp.dir, 'b'), id: 'b', model: model(6, [4, 4], 2), training });
    assert.equal(a.beamPath, join(tmp.dir, 'a', 'beam.onnx'));
    const text = (await readFile(join(tmp.dir, 'a', 'model.json'))).toString();
    assert.ok(!text.includes('beam'), 'the manifest does not mention the beam');
    await copyFile(b.beamPath!, a.beamPath!);
    await assert.rejects(loadBundle(join(tmp.dir, 'a')), (err: Error & { code?: string }) =>
      err.code === 'SIDX_ERR_MODEL_BUNDLE' && /beam\.onnx: was built for encoder sha256/.test(err.message));
  } finally {
    tmp.cleanup();
  }
});

test('EncoderPool.beam splits many rows into chunks and reassembles every level and the encoder codes in row order', async () => {
  const tmp = tempDir();
  const dim = 5;
  const m = model(dim, [16, 16, 16], 7);
  const bundle = await exportRqKmeansBundle({ dir: join(tmp.dir, 'm'), id: 'm', model: m, training });
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu' });
  try {
    const n = 700; // width 4096 x K 16: 256 rows per chunk, so 3 chunks
    const x = randomMatrix(n, dim, 99);
    const { levels, codes } = await pool.beam(x, n, 4096, 1);
    assert.deepEqual(codes, (await pool.encode(x, n)).codes, 'the encoder\'s own codes come with the beam, in row order');
    assert.deepEqual(levels.map((l) => l.width), [16, 256, 4096]);
    for (const i of [0, 255, 256, 511, 699]) {
      const z = Float64Array.from(x.subarray(i * dim, (i + 1) * dim));
      const norm = Math.sqrt(z.reduce((s, v) => s + v * v, 0));
      const ref = beamReference(z.map((v) => v / norm), m.codebooks, dim, 4096, 1);
      levels.forEach((lv, l) => {
        const w = lv.width;
        const got = Array.from({ length: 8 }, (_, b) => Array.from(lv.codes.subarray((i * w + b) * (l + 1), (i * w + b + 1) * (l + 1))));
        assert.deepEqual(got, ref[l]!.codes.slice(0, 8), `row ${i} level ${l + 1}`);
      });
    }
    const empty = await pool.beam(new Float32Array(0), 0, 8, 1);
    assert.equal(empty.codes.length, 0);
    assert.deepEqual(empty.levels.map((l) => [l.width, l.codes.length]), [[8, 0], [8, 0], [8, 0]]);
    await assert.rejects(pool.beam(x.subarray(0, dim), 1, 0, 1), { code: 'SIDX_ERR_INVALID_INPUT' });
  } finally {
    await pool.close();
    tmp.cleanup();
  }
});
