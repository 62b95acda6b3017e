import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const run = promisify(execFile);
const tmp = tempDir();
after(() => tmp.cleanup());

test('sidx train --sample streams an AL-GR CSV into a sample and trains on it', async () => {
  const dim = 8;
  const rows = 3000;
  const vectors = randomMatrix(rows, dim, 5);
  const lines = ['base62_string,feature'];
  for (let i = 0; i < rows; i++) lines.push(`item${i},${Buffer.from(vectors.buffer, i * dim * 4, dim * 4).toString('base64')}`);
  const csv = join(tmp.dir, 'items.csv');
  writeFileSync(csv, lines.join('\n') + '\n');
  const out = join(tmp.dir, 'model');
  const { stderr } = await run(process.execPath, [
    join(repoRoot, 'bin', 'sidx.js'), 'train', '--method', 'rqkmeans', '--input', csv, '--levels', '2',
    '--codebook-size', '16', '--sample', '500', '--seed', '1', '--out', out,
  ], { cwd: repoRoot });
  assert.match(stderr, /read 500 x 8 from .*items\.csv, a seeded sample of 3000 rows/);
  const bundle = await loadBundle(out);
  assert.equal(bundle.manifest.inputDim, dim);
  assert.equal((bundle.manifest.metrics as { items: number }).items, 500);
});
