import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { sidQualityMetrics } from '../../src/train/metrics.ts';
import { readNpy } from '../../src/io/npy.ts';
import { repoRoot, sharedFile, skipWithoutShared } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const dir = join(repoRoot, 'models', 'default');

test('models/default loads, is the documented RQ-KMeans 3 x 256 over 512-d input, and encodes', async () => {
  const bundle = await loadBundle(dir);
  const m = bundle.manifest;
  assert.equal(m.id, 'default-rqkmeans-3x256');
  assert.deepEqual([m.method, m.inputDim, m.levels, m.latentDim, m.normalize, m.metric], ['rqkmeans', 512, 3, 512, 'l2', 'ip']);
  assert.deepEqual(m.codebookSizes, [256, 256, 256]);
  assert.match(m.training!.command, /^sidx train --method rqkmeans --input \.\.\/shared\/data\/scientific\/text_emb\.npy /);
  assert.match(m.training!.command, /--out models\/default\b/);
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

test('models/default was trained on the file its manifest names, and reproduces its recorded metrics there',
  { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
    const path = sharedFile('scientific', 'text_emb.npy');
    const bundle = await loadBundle(dir);
    assert.equal(bundle.manifest.training!.dataDigest, createHash('sha256').update(await readFile(path)).digest('hex'));
    const { data, shape } = await readNpy(path);
    const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
    try {
      const { codes } = await pool.encode(data, shape[0]!);
      const metrics = sidQualityMetrics(codes, shape[0]!, bundle.manifest.codebookSizes);
      const recorded = bundle.manifest.metrics as { distinctSids: number; maxItemsPerSid: number };
      assert.equal(metrics.distinctSids, recorded.distinctSids);
      assert.equal(metrics.maxItemsPerSid, recorded.maxItemsPerSid);
    } finally {
      await pool.close();
    }
  });
