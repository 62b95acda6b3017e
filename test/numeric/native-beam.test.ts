import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beamReference } from '../../src/numeric/beam-graph.ts';
import { beamWidths, packedLengths } from '../../src/numeric/beam-query-graph.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { randomMatrix } from '../helpers/random.ts';

const { BeamSearch } = loadFaissBinding();

const cases = [
  { name: 'L2 scores, width below K', w: 1, width: 6, sizes: [8, 6, 5] },
  { name: 'partial inner product', w: 0, width: 6, sizes: [8, 6, 5] },
  { name: 'width above K_1 and above the number of prefixes', w: 1, width: 50, sizes: [4, 3, 7] },
  { name: 'single level', w: 1, width: 3, sizes: [9] },
  { name: 'mixed weight, four levels', w: 0.5, width: 10, sizes: [6, 5, 4, 3] },
] as const;

for (const c of cases) for (const lut of [true, false]) {
  test(`native beam matches a brute-force JS beam: ${c.name} (${lut ? 'dot-product tables' : 'sgemm per level'})`, () => {
    const dim = 7;
    const n = 40;
    const codebooks = c.sizes.map((k, l) => randomMatrix(k, dim, 100 + l, 0.6 ** l));
    const z = randomMatrix(n, dim, 7);
    const search = new BeamSearch(codebooks, dim, lut ? 64 << 20 : 0);
    assert.deepEqual([search.levels, search.dim], [c.sizes.length, dim]);
    const widths = beamWidths(c.width, c.sizes);
    const lengths = packedLengths(n, widths);
    const codes = new Int32Array(lengths.codes - n * c.sizes.length);
    const scores = new Float32Array(lengths.scores);
    search.search(z, n, c.width, c.w, codes, scores);
    let codesAt = 0;
    let scoresAt = 0;
    widths.forEach((width, l) => {
      for (let i = 0; i < n; i++) {
        const ref = beamReference(Float64Array.from(z.subarray(i * dim, (i + 1) * dim)), codebooks, dim, c.width, c.w)[l]!;
        assert.equal(ref.codes.length, width);
        const got = Array.from({ length: width }, (_, b) => Array.from(codes.subarray(codesAt + (i * width + b) * (l + 1), codesAt + (i * width + b + 1) * (l + 1))));
        assert.deepEqual(got, ref.codes, `row ${i} level ${l + 1} prefixes`);
        ref.scores.forEach((s, b) => {
          const v = scores[scoresAt + i * width + b]!;
          assert.ok(Math.abs(v - s) <= 1e-4 * Math.max(1, Math.abs(s)), `row ${i} level ${l + 1} score ${b}: ${v} vs ${s}`);
        });
      }
      codesAt += n * width * (l + 1);
      scoresAt += n * width;
    });
  });
}

test('native beam keeps the graph\'s tie order (lower flat index) through its buffered selection', () => {
  // Small integer codewords, each written 4 times: scores tie exactly, within a parent and across parents, and the
  // selection cuts its buffer many times (widths far below the children per level).
  const dim = 4;
  const sizes = [16, 64, 64];
  const codebooks = sizes.map((k, l) => Float32Array.from({ length: k * dim }, (_, i) => ((Math.floor(i / (4 * dim)) * 7 + (i % dim) * 3 + l) % 5) - 2));
  const n = 12;
  const z = Float32Array.from({ length: n * dim }, (_, i) => ((i * 5) % 7) - 3);
  for (const width of [5, 24, 100]) {
    const widths = beamWidths(width, sizes);
    const lengths = packedLengths(n, widths);
    const codes = new Int32Array(lengths.codes - n * sizes.length);
    const scores = new Float32Array(lengths.scores);
    new BeamSearch(codebooks, dim, 64 << 20).search(z, n, width, 1, codes, scores);
    let codesAt = 0;
    widths.forEach((w, l) => {
      for (let i = 0; i < n; i++) {
        const ref = beamReference(Float64Array.from(z.subarray(i * dim, (i + 1) * dim)), codebooks, dim, width, 1)[l]!;
        const got = Array.from({ length: w }, (_, b) => Array.from(codes.subarray(codesAt + (i * w + b) * (l + 1), codesAt + (i * w + b + 1) * (l + 1))));
        assert.deepEqual(got, ref.codes, `width ${width} row ${i} level ${l + 1}`);
      }
      codesAt += n * w * (l + 1);
    });
  }
});

test('native beam refuses codebooks, queries and outputs of the wrong size', () => {
  const books = [randomMatrix(4, 3, 1), randomMatrix(4, 3, 2)];
  assert.throws(() => new BeamSearch([new Float32Array(7)], 3, 0), (e: Error & { code?: string }) => e.code === 'SIDX_ERR_DIMENSION' && /codebook 0 has 7 floats/.test(e.message));
  assert.throws(() => new BeamSearch([], 3, 0), /at least one codebook/);
  const search = new BeamSearch(books, 3, 1 << 20);
  const ok = { codes: new Int32Array(2 * (2 + 2 * 2)), scores: new Float32Array(2 * (2 + 2)) };
  search.search(randomMatrix(2, 3, 3), 2, 2, 1, ok.codes, ok.scores);
  assert.throws(() => search.search(randomMatrix(2, 3, 3), 3, 2, 1, ok.codes, ok.scores), (e: Error & { code?: string }) => e.code === 'SIDX_ERR_DIMENSION');
  assert.throws(() => search.search(randomMatrix(2, 3, 3), 2, 2, 1, new Int32Array(3), ok.scores), /expected 12 \/ 8/);
  assert.throws(() => search.search(randomMatrix(2, 3, 3), 2, 0, 1, ok.codes, ok.scores), /width/);
  // A non-finite latent (never from a validated embedding) still yields valid codes, not a corrupted heap.
  search.search(Float32Array.of(Number.NaN, 0, 1, 1, 0, Number.NaN), 2, 2, 1, ok.codes, ok.scores);
  assert.ok(ok.codes.every((c) => c >= 0 && c < 4), `codes in range: ${ok.codes}`);
});

test('native beam gives a row the same codes and scores, to the bit, alone and batched with others', () => {
  // The codeword dot products are computed for blocks of rows together; a retrieve's answer must not depend on the
  // queries that shared its encoder run. 21 rows: blocks of 8, 8 and 5.
  const dim = 40;
  const sizes = [32, 16, 16];
  const codebooks = sizes.map((k, l) => randomMatrix(k, dim, 300 + l, 0.5 ** l));
  const n = 21;
  const z = randomMatrix(n, dim, 11);
  for (const lut of [true, false]) {
    const search = new BeamSearch(codebooks, dim, lut ? 64 << 20 : 0);
    const widths = beamWidths(12, sizes);
    const batch = packedLengths(n, widths);
    const codes = new Int32Array(batch.codes - n * sizes.length);
    const scores = new Float32Array(batch.scores);
    search.search(z, n, 12, 0.5, codes, scores);
    const one = packedLengths(1, widths);
    let codesAt = 0;
    let scoresAt = 0;
    const alone = Array.from({ length: n }, (_, i) => {
      const c = new Int32Array(one.codes - sizes.length);
      const s = new Float32Array(one.scores);
      search.search(z.subarray(i * dim, (i + 1) * dim), 1, 12, 0.5, c, s);
      return { c, s };
    });
    widths.forEach((w, l) => {
      const lone = { codes: widths.slice(0, l).reduce((a, x, j) => a + x * (j + 1), 0), scores: widths.slice(0, l).reduce((a, x) => a + x, 0) };
      for (let i = 0; i < n; i++) {
        assert.deepEqual(codes.subarray(codesAt + i * w * (l + 1), codesAt + (i + 1) * w * (l + 1)), alone[i]!.c.subarray(lone.codes, lone.codes + w * (l + 1)), `lut ${lut} row ${i} level ${l + 1} codes`);
        assert.deepEqual(scores.subarray(scoresAt + i * w, scoresAt + (i + 1) * w), alone[i]!.s.subarray(lone.scores, lone.scores + w), `lut ${lut} row ${i} level ${l + 1} scores`);
      }
      codesAt += n * w * (l + 1);
      scoresAt += n * w;
    });
  }
});

/** An encoder's quantizer outputs for z: greedy residual codes and G_l = -2 <r_l, c> + ||c||^2 (float32), per level. */
function quantizerOutputs(z: Float32Array, n: number, dim: number, codebooks: Float32Array[]): { own: Int32Array; cross: Float32Array[]; norms: Float32Array[] } {
  const L = codebooks.length;
  const norms = codebooks.map((c) => Float32Array.from({ length: c.length / dim }, (_, k) => c.subarray(k * dim, (k + 1) * dim).reduce((a, v) => a + v * v, 0)));
  const own = new Int32Array(n * L);
  const cross = codebooks.map((c) => new Float32Array(n * (c.length / dim)));
  for (let i = 0; i < n; i++) {
    const r = Float64Array.from(z.subarray(i * dim, (i + 1) * dim));
    codebooks.forEach((book, l) => {
      const K = book.length / dim;
      let best = 0;
      for (let k = 0; k < K; k++) {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += r[d]! * book[k * dim + d]!;
        cross[l]![i * K + k] = -2 * dot + norms[l]![k]!;
        if (cross[l]![i * K + k]! < cross[l]![i * K + best]!) best = k;
      }
      own[i * L + l] = best;
      for (let d = 0; d < dim; d++) r[d]! -= book[best * dim + d]!;
    });
  }
  return { own, cross, norms };
}

test('native beam from the encoder\'s quantizer outputs (own codes, Gemm results) equals the beam from the codebooks', () => {
  const dim = 24;
  const sizes = [16, 12, 10];
  const codebooks = sizes.map((k, l) => randomMatrix(k, dim, 400 + l, 0.6 ** l));
  const n = 19;
  const z = randomMatrix(n, dim, 13);
  const { own, cross, norms } = quantizerOutputs(z, n, dim, codebooks);
  for (const w of [0, 1, 0.5]) {
    const widths = beamWidths(9, sizes);
    const lengths = packedLengths(n, widths);
    const plain = { codes: new Int32Array(lengths.codes - n * sizes.length), scores: new Float32Array(lengths.scores) };
    const fromCross = { codes: new Int32Array(lengths.codes - n * sizes.length), scores: new Float32Array(lengths.scores) };
    new BeamSearch(codebooks, dim, 64 << 20).search(z, n, 9, w, plain.codes, plain.scores);
    const search = new BeamSearch(codebooks, dim, 64 << 20, norms);
    search.search(z, n, 9, w, fromCross.codes, fromCross.scores, own, cross);
    assert.deepEqual(fromCross.codes, plain.codes, `w ${w}: the same prefixes`);
    fromCross.scores.forEach((s, i) => assert.ok(Math.abs(s - plain.scores[i]!) <= 1e-5 * Math.max(1, Math.abs(s)), `w ${w} score ${i}: ${s} vs ${plain.scores[i]}`));
    // Without the tables (lutMaxBytes 0) the outputs are not usable: the codebooks are read, the answer is the same.
    const noLut = { codes: new Int32Array(lengths.codes - n * sizes.length), scores: new Float32Array(lengths.scores) };
    new BeamSearch(codebooks, dim, 0, norms).search(z, n, 9, w, noLut.codes, noLut.scores, own, cross.map((c) => c.map(() => 1e9)));
    assert.deepEqual(noLut.codes, plain.codes, `w ${w}: no tables, outputs ignored`);
  }
  const out = { codes: new Int32Array(packedLengths(n, beamWidths(9, sizes)).codes - n * sizes.length), scores: new Float32Array(packedLengths(n, beamWidths(9, sizes)).scores) };
  const search = new BeamSearch(codebooks, dim, 64 << 20, norms);
  assert.throws(() => search.search(z, n, 9, 1, out.codes, out.scores, own.subarray(1), cross), /own must be an Int32Array of n x levels codes/);
  assert.throws(() => search.search(z, n, 9, 1, out.codes, out.scores, own, cross.slice(1)), /cross must hold one Float32Array per level/);
  assert.throws(() => search.search(z, n, 9, 1, out.codes, out.scores, own.map(() => 99), cross), /own codes outside the codebooks/);
  assert.throws(() => new BeamSearch(codebooks, dim, 64 << 20, norms.slice(1)), /crossNorms must be an array/);
});
