/**
 * The bundles shipped in models/: models/default (the RQ-VAE `sidx serve` loads by default) and
 * models/rqkmeans-3x256. Each loads, is what its README says, encodes, and reproduces on its training file the
 * metrics its manifest records.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { sidQualityMetrics, type SidMetrics } from '../../src/train/metrics.ts';
import { l2NormalizeRows } from '../../src/train/rqkmeans.ts';
import { decodeSids } from '../../src/train/sid-decoder.ts';
import { readNpy } from '../../src/io/npy.ts';
import { repoRoot, sharedFile, skipWithoutShared } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const shipped = [
  { dir: 'models/default', id: 'default-rqvae-3x256', method: 'rqvae', latentDim: 128, decoder: true },
  { dir: 'models/rqkmeans-3x256', id: 'rqkmeans-3x256', method: 'rqkmeans', latentDim: 512, decoder: false },
];

for (const s of shipped) {
  const dir = join(repoRoot, s.dir);

  test(`${s.dir} loads, is ${s.method} 3 x 256 over 512-d input as documented, and encodes`, async () => {
    const bundle = await loadBundle(dir);
    const m = bundle.manifest;
    assert.equal(m.id, s.id);
    assert.deepEqual([m.method, m.inputDim, m.levels, m.latentDim, m.normalize], [s.method, 512, 3, s.latentDim, 'l2']);
    assert.deepEqual(m.codebookSizes, [256, 256, 256]);
    assert.equal(bundle.decoderPath !== undefined, s.decoder);
    assert.ok(m.training!.command.startsWith(`sidx train --method ${s.method} --input ../shared/data/scientific/text_emb.npy `));
    assert.match(m.training!.command, new RegExp(`--out ${s.dir}( |$)`));
    let bytes = 0;
    for (const f of ['model.json', 'encoder.onnx', 'decoder.onnx', 'beam.onnx']) bytes += (await stat(join(dir, f)).catch(() => ({ size: 0 }))).size;
    assert.ok(bytes <= 5 * 1024 * 1024, `${s.dir} holds ${bytes} bytes (at most 5 MB)`);
    const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
    try {
      const n = 5;
      const { codes, topCodes, topDistances } = await pool.encode(randomMatrix(n, 512, 1), n);
      assert.equal(codes.length, n * 3);
      assert.ok(codes.every((c) => c >= 0 && c < 256));
      assert.equal(topCodes.length, n * 3 * m.topM);
      assert.equal(topDistances.length, n * 3 * m.topM);
    } finally {
      await pool.close();
    }
  });

  test(`${s.dir} was trained on the file its manifest names, and reproduces its recorded metrics there`,
    { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
      const path = sharedFile('scientific', 'text_emb.npy');
      const bundle = await loadBundle(dir);
      assert.equal(bundle.manifest.training!.dataDigest, createHash('sha256').update(await readFile(path)).digest('hex'));
      const { data, shape } = await readNpy(path);
      const n = shape[0]!;
      const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
      let codes: Int32Array;
      try {
        codes = (await pool.encode(data, n)).codes;
      } finally {
        await pool.close();
      }
      const decoded = await decodeSids(bundle, codes, n);
      const metrics = sidQualityMetrics(codes, n, bundle.manifest.codebookSizes,
        { inputs: l2NormalizeRows(data, 512), reconstructions: decoded.vectors, dim: 512 });
      const recorded = bundle.manifest.metrics as unknown as SidMetrics;
      assert.equal(metrics.distinctSids, recorded.distinctSids);
      assert.equal(metrics.maxItemsPerSid, recorded.maxItemsPerSid);
      assert.ok(Math.abs(metrics.reconstructionError! - recorded.reconstructionError!) <= 1e-4 * recorded.reconstructionError!,
        `reconstruction error ${metrics.reconstructionError} vs recorded ${recorded.reconstructionError}`);
    });
}

test("the README's quick start retrieves by the SID models/default gives its example item", async () => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const said = /sku-1's SID under models\/default, \[(\d+),(\d+),(\d+)\]/.exec(readme);
  assert.ok(said, 'the quick start names sku-1\'s SID');
  const sid = said.slice(1).map(Number);
  assert.ok(readme.includes(`"sids":[[${sid.join(',')}]`), 'the quick start retrieves by that SID');
  const pool = await EncoderPool.create(await loadBundle(join(repoRoot, 'models/default')), { workers: 1, provider: 'cpu' });
  try {
    const embedding = Float32Array.from({ length: 512 }, (_, i) => Math.sin(i)); // the quick start's upsert
    assert.deepEqual(Array.from((await pool.encode(embedding, 1)).codes), sid);
  } finally {
    await pool.close();
  }
});
