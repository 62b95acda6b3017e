import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { neighbourHitRate } from '../../src/eval/embedding-hitrate.ts';
import { decodeSids } from '../../src/train/sid-decoder.ts';
import type { PredictionSet } from '../../src/io/interactions.ts';
import { GraphBuilder } from '../../src/numeric/onnx-builder.ts';
import { writeBundle } from '../../src/tokenizer/bundle.ts';
import { exportRqKmeansBundle } from '../../src/train/export.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix, rng } from '../helpers/random.ts';

const DIM = 6;
const SIZES = [5, 4];

/** A decoder.onnx computing 2 × (sum of the SID's codewords): the bundle contract, distinguishable from the fallback. */
function doubledDecoder(codebooks: Float32Array[]): Uint8Array {
  const g = new GraphBuilder('test_decoder');
  const codes = g.input('codes', 'int64', ['N', SIZES.length]);
  let sum = '';
  codebooks.forEach((book, l) => {
    const c = g.initializer(`c${l}`, book, [SIZES[l]!, DIM]);
    const q = g.op('Gather', [c, g.op('Gather', [codes, g.int64([l], [])], { axis: 1 })], { axis: 0 });
    sum = sum === '' ? q : g.op('Add', [sum, q]);
  });
  g.output(g.op('Mul', [sum, g.float32([2], [])]), 'float32', ['N', DIM], 'embedding');
  return g.serialize({ opset: 17 });
}

test('SIDs decode through decoder.onnx when the bundle has one, else to RQ-KMeans codeword sums', async () => {
  const tmp = tempDir();
  try {
    const codebooks = SIZES.map((k, l) => randomMatrix(k, DIM, 30 + l));
    const training = { source: 'random', command: 'test', seed: 0, dataDigest: '0'.repeat(64) };
    const plain = await exportRqKmeansBundle({ dir: join(tmp.dir, 'plain'), id: 'plain', model: { dim: DIM, normalize: 'none', codebookSizes: SIZES, codebooks }, training });
    const n = 7;
    const r = rng(3);
    const codes = Int32Array.from({ length: n * 2 }, (_, i) => Math.floor(r() * SIZES[i % 2]!));
    const sums = Array.from({ length: n * DIM }, (_, i) => {
      const row = Math.floor(i / DIM);
      const j = i % DIM;
      return codebooks[0]![codes[row * 2]! * DIM + j]! + codebooks[1]![codes[row * 2 + 1]! * DIM + j]!;
    });
    const a = await decodeSids(plain, codes, n);
    assert.equal(a.by, 'codeword sums');
    a.vectors.forEach((v, i) => assert.ok(Math.abs(v - sums[i]!) < 1e-5));
    const withDecoder = await writeBundle(join(tmp.dir, 'dec'), plain.manifest, await readFile(plain.encoderPath), doubledDecoder(codebooks));
    const b = await decodeSids(withDecoder, codes, n);
    assert.equal(b.by, 'decoder.onnx');
    b.vectors.forEach((v, i) => assert.ok(Math.abs(v - 2 * sums[i]!) < 1e-5));
  } finally {
    tmp.cleanup();
  }
});

test('neighbourHitRate matches a brute-force top-k by inner product; empty histories are left out', async () => {
  const n = 200;
  const dim = 5;
  const k = 7;
  const vectors = randomMatrix(n, dim, 11);
  const r = rng(12);
  const histories = Array.from({ length: 60 }, (_, u) => (u % 10 === 0 ? [] : Array.from({ length: 1 + (u % 4) }, () => Math.floor(r() * n))));
  const targets = Int32Array.from(histories, () => Math.floor(r() * n));
  // Half the targets are made hits on purpose: the nearest other item of the first history item.
  const dot = (a: number, b: number) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += vectors[a * dim + j]! * vectors[b * dim + j]!;
    return s;
  };
  const topK = (item: number) => Array.from({ length: n }, (_, i) => i).sort((a, b) => dot(item, b) - dot(item, a)).slice(0, k);
  histories.forEach((h, u) => {
    if (h.length > 0 && u % 2 === 0) targets[u] = topK(h[0]!)[3]!;
  });
  const offsets = new Int32Array(histories.length + 1);
  histories.forEach((h, i) => (offsets[i + 1] = offsets[i]! + h.length));
  const test: PredictionSet = { users: histories.map((_, i) => `u${i}`), offsets, items: Int32Array.from(histories.flat()), targets };
  const got = await neighbourHitRate(vectors, n, dim, test, k);
  let rows = 0;
  let hits = 0;
  histories.forEach((h, u) => {
    if (h.length === 0) return;
    rows++;
    if (h.some((item) => topK(item).includes(targets[u]!))) hits++;
  });
  assert.equal(got.rows, rows);
  assert.equal(got.rate, hits / rows);
  assert.ok(hits >= 20, `${hits} hits`);
});
