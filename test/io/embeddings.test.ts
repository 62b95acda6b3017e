import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { embeddingFormatOf, readEmbeddings } from '../../src/io/embeddings.ts';
import { encodeNpy } from '../../src/io/npy.ts';
import { rejectsNaming, withFiles } from '../helpers/input-files.ts';
import { sharedFile, skipWithoutShared } from '../helpers/paths.ts';
import { npyOf, zipBytes } from './npz-fixture.ts';

test('picks the format by extension', () => {
  assert.equal(embeddingFormatOf('a/b.NPY'), 'npy');
  assert.equal(embeddingFormatOf('x.npz'), 'npz');
  assert.equal(embeddingFormatOf('x.csv'), 'algr-csv');
  assert.equal(embeddingFormatOf('x.csv.gz'), 'algr-csv');
  assert.equal(embeddingFormatOf('x.parquet'), null);
});

const sci = skipWithoutShared('scientific', 'text_emb.npy') || skipWithoutShared('scientific', 'item_emb_algr.csv')
  || skipWithoutShared('scientific', 'item2index.tsv');

test('the shared .npy and AL-GR .csv give the same matrix; ids from the CSV or an id file', { skip: sci }, async () => {
  const npy = await readEmbeddings(sharedFile('scientific', 'text_emb.npy'), { dim: 512 });
  assert.equal(npy.format, 'npy');
  assert.equal(npy.n, 1585);
  assert.equal(npy.dim, 512);
  assert.equal(npy.ids, null);
  const csv = await readEmbeddings(sharedFile('scientific', 'item_emb_algr.csv'));
  assert.equal(csv.format, 'algr-csv');
  assert.equal(csv.skipped, 0);
  assert.deepEqual(csv.vectors, npy.vectors);
  const asins = readFileSync(sharedFile('scientific', 'item2index.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t')[0]!);
  assert.deepEqual(csv.ids, asins);
  await withFiles({ 'ids.txt': asins.join('\n') }, async (p) => {
    const withIds = await readEmbeddings(sharedFile('scientific', 'text_emb.npy'), { idFile: p('ids.txt') });
    assert.deepEqual(withIds.ids, asins);
  });
  await rejectsNaming(readEmbeddings(sharedFile('scientific', 'text_emb.npy'), { dim: 256 }), sharedFile('scientific', 'text_emb.npy'),
    /vectors have dimension 512, expected 256/);
});

const emb = Float32Array.from({ length: 12 }, (_, i) => i - 5.5);

test('.npz: FORGE embeds + ids, a single unnamed matrix, or a named one', async () => {
  await withFiles({
    'forge.npz': zipBytes([
      { name: 'ids.npy', data: npyOf(BigInt64Array.from([10n, 20n, 30n]), [3]), deflate: true },
      { name: 'embeds.npy', data: npyOf(emb, [3, 4]), deflate: true },
    ]),
    'one.npz': zipBytes([{ name: 'x.npy', data: npyOf(emb, [4, 3]) }, { name: 'v.npy', data: npyOf(emb, [12]) }]),
    'two.npz': zipBytes([{ name: 'x.npy', data: npyOf(emb, [4, 3]) }, { name: 'y.npy', data: npyOf(emb, [6, 2]) }]),
  }, async (p) => {
    const f = await readEmbeddings(p('forge.npz'));
    assert.deepEqual(f, { ids: ['10', '20', '30'], vectors: emb, n: 3, dim: 4, format: 'npz', skipped: 0 });
    const one = await readEmbeddings(p('one.npz'));
    assert.equal(one.dim, 3);
    assert.equal(one.ids, null);
    await rejectsNaming(readEmbeddings(p('two.npz')), p('two.npz'), /more than one 2-D float array; name the one to use \(arrays: x float32 \(4, 3\); y float32 \(6, 2\)\)/);
    const y = await readEmbeddings(p('two.npz'), { array: 'y' });
    assert.equal(y.n, 6);
    await rejectsNaming(readEmbeddings(p('one.npz'), { array: 'v' }), p('one.npz'), /array 'v' is float32 \(12\), expected a 2-D float array/);
    await rejectsNaming(readEmbeddings(p('one.npz'), { array: 'nope' }), p('one.npz'), /missing array 'nope'/);
  });
});

test('unknown extension, non-finite values, 1-D .npy, id count mismatch, a tab in an id file, empty CSV', async () => {
  const nan = Float32Array.from(emb);
  nan[7] = Infinity;
  await withFiles({
    'a.txt': 'x',
    'nan.npy': encodeNpy(nan, [3, 4]),
    'nan.npz': zipBytes([{ name: 'embeds.npy', data: npyOf(nan, [3, 4]) }]),
    'flat.npy': encodeNpy(emb, [12]),
    'ok.npy': encodeNpy(emb, [3, 4]),
    'ids.txt': 'a\nb\n',
    'ids.tsv': 'a\nb\t1\nc\n',
    'empty.csv': 'base62_string,feature\n',
  }, async (p) => {
    await rejectsNaming(readEmbeddings(p('a.txt')), p('a.txt'), /unknown embedding file type \(supported: \.npy, \.npz, \.csv, \.csv\.gz\)/);
    await rejectsNaming(readEmbeddings(p('nan.npy')), p('nan.npy'), /row 2 has Infinity at column 4/);
    await rejectsNaming(readEmbeddings(p('nan.npz')), p('nan.npz'), /row 2 of 'embeds' has Infinity at column 4/);
    await rejectsNaming(readEmbeddings(p('flat.npy')), p('flat.npy'), /expected a 2-D \[N, D\] array, got shape \(12\)/);
    await rejectsNaming(readEmbeddings(p('ok.npy'), { idFile: p('ids.txt') }), p('ids.txt'), /has 2 ids but .*ok\.npy has 3 rows: row 3 has no id/);
    await rejectsNaming(readEmbeddings(p('ok.npy'), { idFile: p('ids.tsv') }), `${p('ids.tsv')}:2`, /id "b\\t1" holds a tab: one id per line, no other columns/);
    await rejectsNaming(readEmbeddings(p('empty.csv')), p('empty.csv'), /no valid rows/);
  });
});
