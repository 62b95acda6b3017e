import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sampleEmbeddings } from '../../src/io/reservoir.ts';
import { readEmbeddings } from '../../src/io/embeddings.ts';
import { tempDir, sharedFile, skipWithoutShared } from '../helpers/paths.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

/** An AL-GR CSV whose row i is the 4-d vector (i, i, i, i), so a sampled row names its source. */
function writeCsv(rows: number): string {
  const lines = ['base62_string,feature'];
  for (let i = 0; i < rows; i++) lines.push(`id${i},${Buffer.from(new Float32Array([i, i, i, i]).buffer).toString('base64')}`);
  lines.splice(5, 0, 'broken-row-without-feature');
  const path = join(tmp.dir, `rows-${rows}.csv`);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

test('a CSV is sampled row by row: count rows, ids match vectors, deterministic for a seed', async () => {
  const path = writeCsv(5000);
  const a = await sampleEmbeddings(path, 300, 7);
  assert.equal(a.n, 300);
  assert.equal(a.rows, 5000);
  assert.equal(a.skipped, 1);
  for (let i = 0; i < a.n; i++) {
    const v = a.vectors[i * 4]!;
    assert.equal(a.ids![i], `id${v}`, 'each sampled id travels with its own vector');
    assert.deepEqual(Array.from(a.vectors.subarray(i * 4, i * 4 + 4)), [v, v, v, v]);
  }
  const b = await sampleEmbeddings(path, 300, 7);
  assert.deepEqual(b.vectors, a.vectors);
  const c = await sampleEmbeddings(path, 300, 8);
  assert.notDeepEqual(c.vectors, a.vectors);
  assert.equal(new Set(a.ids).size, 300, 'no row twice');
});

test('the sample is uniform over the file (mean row index near the middle, every decile present)', async () => {
  const path = writeCsv(20000);
  const s = await sampleEmbeddings(path, 2000, 1);
  const deciles = new Array(10).fill(0);
  let sum = 0;
  for (let i = 0; i < s.n; i++) {
    const row = s.vectors[i * 4]!;
    sum += row;
    deciles[Math.floor(row / 2000)]++;
  }
  const mean = sum / s.n;
  assert.ok(Math.abs(mean - 10000) < 600, `mean row ${mean}`);
  for (const d of deciles) assert.ok(d > 140 && d < 260, `decile counts ${deciles}`);
});

test('asking for more rows than the file has returns them all', async () => {
  const path = writeCsv(50);
  const s = await sampleEmbeddings(path, 100, 0);
  assert.equal(s.n, 50);
  assert.deepEqual(new Set(Array.from({ length: 50 }, (_, i) => s.vectors[i * 4])), new Set(Array.from({ length: 50 }, (_, i) => i)));
});

test('non-CSV inputs are read whole', { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
  const path = sharedFile('scientific', 'text_emb.npy');
  const s = await sampleEmbeddings(path, 10, 0);
  const all = await readEmbeddings(path);
  assert.equal(s.n, all.n);
  assert.equal(s.rows, 1585);
});
