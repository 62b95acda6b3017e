/**
 * A uniform, seeded sample of rows from an embedding file too large to hold whole (reservoir sampling, algorithm
 * R): memory is `count × dim` floats whatever the file size. AL-GR CSV files are streamed; .npy/.npz are read
 * whole by their readers (their size is the matrix itself).
 */
import { seededUniform } from '../random.ts';
import { readAlgrCsv } from './algr-csv.ts';
import { inputError } from './input-error.ts';
import { embeddingFormatOf, readEmbeddings, type Embeddings } from './embeddings.ts';

export interface SampledEmbeddings extends Embeddings {
  /** Valid rows in the whole file (the sample holds min(count, rows)). */
  rows: number;
}

export async function sampleEmbeddings(
  path: string,
  count: number,
  seed: number,
  options: { dim?: number; array?: string } = {},
): Promise<SampledEmbeddings> {
  if (embeddingFormatOf(path) !== 'algr-csv') {
    const all = await readEmbeddings(path, options);
    return { ...all, rows: all.n };
  }
  const reader = readAlgrCsv(path, { dim: options.dim });
  const random = seededUniform(seed);
  let dim = 0;
  let sample = new Float32Array(0);
  const ids: string[] = [];
  let seen = 0;
  for await (const batch of reader) {
    if (dim === 0) {
      dim = batch.dim;
      sample = new Float32Array(count * dim);
    }
    for (let r = 0; r < batch.n; r++, seen++) {
      const slot = seen < count ? seen : Math.floor(random() * (seen + 1));
      if (slot >= count) continue;
      sample.set(batch.vectors.subarray(r * dim, (r + 1) * dim), slot * dim);
      ids[slot] = batch.ids[r]!;
    }
  }
  if (seen === 0) throw inputError(path, 'no valid rows');
  const n = Math.min(seen, count);
  return {
    ids, vectors: n === count ? sample : sample.slice(0, n * dim), n, dim, format: 'algr-csv',
    skipped: reader.stats.skipped, rows: seen,
  };
}
