import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { collectAlgrCsv, readAlgrCsv, type AlgrSkip } from '../../src/io/algr-csv.ts';
import { readNpy } from '../../src/io/npy.ts';
import { SidxError } from '../../src/errors.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';

const b64 = (v: number[]) => Buffer.from(Float32Array.from(v).buffer).toString('base64');

async function withCsv(content: string | Uint8Array, fn: (path: string) => Promise<void>, name = 'emb.csv') {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, name);
    writeFileSync(path, content);
    await fn(path);
  } finally {
    cleanup();
  }
}

test('the shared AL-GR CSV decodes to exactly text_emb.npy, ids in item2index.tsv order',
  { skip: skipWithoutShared('scientific', 'item_emb_algr.csv') || skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
    const csv = sharedFile('scientific', 'item_emb_algr.csv');
    const npy = await readNpy(sharedFile('scientific', 'text_emb.npy'));
    const c = await collectAlgrCsv(csv, { batchSize: 500 });
    assert.equal(c.n, 1585);
    assert.equal(c.dim, 512);
    assert.deepEqual(npy.shape, [1585, 512]);
    assert.ok(Buffer.from(c.vectors.buffer, c.vectors.byteOffset, c.vectors.byteLength)
      .equals(Buffer.from(npy.data.buffer, npy.data.byteOffset, npy.data.byteLength)), 'bit-identical to text_emb.npy');
    assert.equal(c.stats.header, 'base62_string,feature');
    assert.equal(c.stats.skipped, 0);
    assert.equal(c.stats.lines, 1586);
    // item2index.tsv: ASIN <TAB> row; in this data set line i holds row i-1 and the CSV has the same ASIN order.
    const mapping = readFileSync(sharedFile('scientific', 'item2index.tsv'), 'utf8').trim().split('\n').map((l) => l.trim().split('\t'));
    assert.equal(mapping.length, 1585);
    mapping.forEach(([asin, index], i) => {
      assert.equal(Number(index), i);
      assert.equal(c.ids[i], asin);
    });
  });

test('streams in batches with line numbers', { skip: skipWithoutShared('scientific', 'item_emb_algr.csv') }, async () => {
  const reader = readAlgrCsv(sharedFile('scientific', 'item_emb_algr.csv'), { batchSize: 500 });
  const sizes: number[] = [];
  for await (const b of reader) {
    assert.equal(b.vectors.length, b.n * b.dim);
    assert.equal(b.ids.length, b.n);
    assert.equal(b.lines.length, b.n);
    assert.equal(b.firstLine, 2 + sizes.reduce((a, s) => a + s, 0));
    assert.equal(b.lines[b.n - 1], b.firstLine + b.n - 1);
    sizes.push(b.n);
    assert.equal(reader.stats.done, false);
  }
  assert.deepEqual(sizes, [500, 500, 500, 85]);
  assert.equal(reader.stats.done, true);
  assert.equal(reader.stats.rows, 1585);
});

// Lines: 1 header, 2 good, 3 bad base64 char, 4 short row, 5 missing comma, 6 good (quoted, CRLF), 7 blank,
// 8 empty id, 9 extra field, 10 NaN, 11 base64 of 10 bytes, 12 good.
const crafted = [
  'base62_string,feature',
  `a1,${b64([1, 2, 3, 4])}`,
  `a2,${b64([1, 2, 3, 4]).slice(0, -4)}@@@=`,
  `a3,${b64([1, 2, 3])}`,
  `a4 ${b64([1, 2, 3, 4])}`,
  `"a5","${b64([5, 6, 7, 8])}"\r`,
  '',
  `,${b64([1, 2, 3, 4])}`,
  `a6,${b64([1, 2, 3, 4])},x`,
  `a7,${b64([1, Number.NaN, 3, 4])}`,
  `a8,${Buffer.alloc(10).toString('base64')}`,
  `a9,${b64([-1, -2, -3, 0.5])}`,
].join('\n') + '\n';

test('bad rows are skipped, counted by reason, and reported with file and line', async () => {
  await withCsv(crafted, async (path) => {
    const seen: AlgrSkip[] = [];
    const c = await collectAlgrCsv(path, { onSkip: (s) => seen.push(s), batchSize: 2 });
    assert.deepEqual(c.ids, ['a1', 'a5', 'a9']);
    assert.deepEqual(c.vectors, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, 0.5]));
    assert.equal(c.dim, 4);
    assert.equal(c.stats.rows, 3);
    assert.equal(c.stats.skipped, 7);
    assert.deepEqual(c.stats.skippedBy, { 'missing-field': 1, 'extra-field': 1, 'empty-id': 1, base64: 1, dimension: 2, 'not-finite': 1 });
    assert.deepEqual(seen.map((s) => [s.line, s.reason]), [
      [3, 'base64'], [4, 'dimension'], [5, 'missing-field'], [8, 'empty-id'], [9, 'extra-field'], [10, 'not-finite'], [11, 'dimension'],
    ]);
    assert.deepEqual(c.stats.firstSkips, seen);
    for (const s of seen) assert.ok(s.message.startsWith(`${path}:${s.line}: `), s.message);
    assert.match(seen[0]!.message, /feature is not valid base64/);
    assert.match(seen[1]!.message, /decodes to 3 values, expected 4 \(from line 2, the first row\)/);
    assert.match(seen[2]!.message, /missing comma/);
    assert.match(seen[5]!.message, /value 2 is NaN/);
    assert.match(seen[6]!.message,
      /: feature decodes to 10 bytes, not a whole number of float32 values \(expected 4 values = 16 bytes, from line 2, the first row\)$/);
  });
});

test('the expected dimension option, no header, keepSkips', async () => {
  const text = [`x,${b64([1, 2])}`, `y,${b64([1, 2, 3])}`, `z,${b64([4, 5, 6])}`, `w,${Buffer.alloc(3).toString('base64')}`].join('\n');
  await withCsv(text, async (path) => {
    const seen: string[] = [];
    const reader = readAlgrCsv(path, { dim: 3, keepSkips: 0, onSkip: (s) => seen.push(s.message) });
    const got: string[] = [];
    for await (const b of reader) got.push(...b.ids);
    assert.deepEqual(got, ['y', 'z']);
    assert.equal(reader.stats.header, null);
    assert.equal(reader.stats.skipped, 2);
    assert.deepEqual(reader.stats.firstSkips, []);
    // Bytes and values told apart; the dimension the caller gave needs no source.
    assert.deepEqual(seen, [
      `${path}:1: feature decodes to 2 values, expected 3`,
      `${path}:4: feature decodes to 3 bytes, not a whole number of float32 values (expected 3 values = 12 bytes)`,
    ]);
    const free = await collectAlgrCsv(path);
    assert.deepEqual(free.ids, ['x']);
    assert.equal(free.dim, 2);
  });
});

test('strict mode throws on the first bad row, naming file and line', async () => {
  await withCsv(crafted, async (path) => {
    await assert.rejects(collectAlgrCsv(path, { strict: true }), (err: unknown) => {
      assert.ok(err instanceof SidxError);
      assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
      assert.equal(err.field, `${path}:3`);
      assert.match(err.message, new RegExp(`^${path.replace(/[.]/g, '\\.')}:3: feature is not valid base64`));
      return true;
    });
  });
});

test('a file with no valid rows is an error pointing at the first problem', async () => {
  await withCsv('base62_string,feature\nq,###\n', async (path) => {
    await assert.rejects(collectAlgrCsv(path), (err: unknown) => {
      assert.ok(err instanceof SidxError);
      assert.match(err.message, /no valid rows \(2 lines, 1 skipped\); first problem: .*emb\.csv:2: feature is not valid base64/);
      return true;
    });
  });
});

test('gzipped CSV and a UTF-8 BOM', async () => {
  const text = `\ufeffbase62_string,feature\nk1,${b64([0.25, 0.5])}\nk2,${b64([1, -1])}\n`;
  await withCsv(gzipSync(text), async (path) => {
    const c = await collectAlgrCsv(path);
    assert.deepEqual(c.ids, ['k1', 'k2']);
    assert.deepEqual(c.vectors, Float32Array.from([0.25, 0.5, 1, -1]));
    assert.equal(c.stats.header, 'base62_string,feature');
  }, 'emb.csv.gz');
});

test('a missing file is an input error naming it; bad options are refused', async () => {
  await assert.rejects(collectAlgrCsv('/nonexistent/emb.csv'), (err: unknown) => {
    assert.ok(err instanceof SidxError);
    assert.match(err.message, /^\/nonexistent\/emb\.csv: cannot read/);
    return true;
  });
  assert.throws(() => readAlgrCsv('x.csv', { batchSize: 0 }), SidxError);
  assert.throws(() => readAlgrCsv('x.csv', { dim: 1.5 }), SidxError);
});
