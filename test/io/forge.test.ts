import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readForgeContrastive, readForgeReconstruct } from '../../src/io/forge.ts';
import { rejectsNaming, withFiles } from '../helpers/input-files.ts';
import { npyOf, npyPickledDict, zipBytes, type ZipMember } from './npz-fixture.ts';

const D = 8;
const embeds = (n: number) => Float32Array.from({ length: n * D }, (_, i) => Math.cos(i));
const ids = (n: number) => BigInt64Array.from({ length: n }, (_, i) => 1_000_000_000_000n + BigInt(i));

const npz = (members: Record<string, Uint8Array>) =>
  zipBytes(Object.entries(members).map(([k, data]): ZipMember => ({ name: `${k}.npy`, data, deflate: true })));

test('reconstruct_data_mask.npz: ids and embeds', async () => {
  await withFiles({ 'r.npz': npz({ ids: npyOf(ids(5), [5]), embeds: npyOf(embeds(5), [5, D]) }) }, async (p) => {
    const r = await readForgeReconstruct(p('r.npz'));
    assert.equal(r.n, 5);
    assert.equal(r.dim, D);
    assert.deepEqual(r.ids, ids(5));
    assert.deepEqual(r.embeds, embeds(5));
  });
});

test('reconstruct: length mismatch names the row without a partner', async () => {
  await withFiles({
    long: npz({ ids: npyOf(ids(6), [6]), embeds: npyOf(embeds(5), [5, D]) }),
    short: npz({ ids: npyOf(ids(4), [4]), embeds: npyOf(embeds(5), [5, D]) }),
  }, async (p) => {
    await rejectsNaming(readForgeReconstruct(p('long')), p('long'), /'ids' has 6 rows but 'embeds' has 5: row 6 of 'ids' has no embedding/);
    await rejectsNaming(readForgeReconstruct(p('short')), p('short'), /'ids' has 4 rows but 'embeds' has 5: row 5 of 'embeds' has no entry in 'ids'/);
  });
});

test('reconstruct: missing array, wrong shapes and dtypes, non-finite values name what is wrong', async () => {
  const nan = embeds(4);
  nan[2 * D + 3] = Number.NaN;
  await withFiles({
    missing: npz({ ids: npyOf(ids(3), [3]) }),
    flat: npz({ ids: npyOf(ids(3), [3]), embeds: npyOf(embeds(3), [3 * D]) }),
    floatIds: npz({ ids: npyOf(new Float32Array(3), [3]), embeds: npyOf(embeds(3), [3, D]) }),
    nan: npz({ ids: npyOf(ids(4), [4]), embeds: npyOf(nan, [4, D]) }),
  }, async (p) => {
    await rejectsNaming(readForgeReconstruct(p('missing')), p('missing'), /missing array 'embeds' \(the archive has: ids\)/);
    await rejectsNaming(readForgeReconstruct(p('flat')), p('flat'), /'embeds' has shape \(24\), expected \[N, D\]/);
    await rejectsNaming(readForgeReconstruct(p('floatIds')), p('floatIds'), /'ids' has dtype float32, expected int64/);
    await rejectsNaming(readForgeReconstruct(p('nan')), p('nan'), /row 3 of 'embeds' has NaN at column 4/);
  });
});

const pairs = BigInt64Array.from([0n, 1n, 2n, 3n, 4n, 0n]);
const contrastive = npz({ itemEncID: npyPickledDict(), pairs: npyOf(pairs, [3, 2]), embeds: npyOf(embeds(5), [5, D]) });

test('contrastive: a pickled itemEncID without --ids is a clear error telling what to do', async () => {
  await withFiles({ 'c.npz': contrastive }, async (p) => {
    await rejectsNaming(readForgeContrastive(p('c.npz')), p('c.npz'),
      /array 'itemEncID' has dtype object, i\.e\. a pickled Python object.*cannot read Python pickles: pass the row ids explicitly with --ids FILE \(one id per line, line i = row i of 'embeds'\)/);
  });
});

test('contrastive with an id file', async () => {
  const idText = `${[...ids(5)].join('\r\n')}\r\n\n`;
  await withFiles({ 'c.npz': contrastive, 'ids.txt': idText }, async (p) => {
    const c = await readForgeContrastive(p('c.npz'), { idFile: p('ids.txt') });
    assert.equal(c.m, 3);
    assert.deepEqual(c.pairs, pairs);
    assert.equal(c.n, 5);
    assert.equal(c.dim, D);
    assert.deepEqual(c.ids, ids(5));
    assert.deepEqual(c.embeds, embeds(5));
  });
});

test('contrastive: bad id files name the id file and the line', async () => {
  await withFiles({
    'c.npz': contrastive,
    'few.txt': '1\n2\n3\n4\n',
    'many.txt': '1\n2\n3\n4\n5\n6\n',
    'word.txt': '1\n2\nabc\n4\n5\n',
    'huge.txt': '1\n2\n3\n9223372036854775808\n5\n',
    'gap.txt': '1\n2\n\n4\n5\n',
    'two-columns.tsv': '1\t0\n2\t1\n3\t2\n4\t3\n5\t4\n',
  }, async (p) => {
    const read = (f: string) => readForgeContrastive(p('c.npz'), { idFile: p(f) });
    await rejectsNaming(read('few.txt'), p('few.txt'), /has 4 ids but 'embeds' in .*c\.npz has 5 rows: row 5 has no id/);
    await rejectsNaming(read('many.txt'), `${p('many.txt')}:6`, /has 6 ids but .* has 5 rows: this line has no row/);
    await rejectsNaming(read('word.txt'), `${p('word.txt')}:3`, /id "abc" is not a decimal integer/);
    await rejectsNaming(read('huge.txt'), `${p('huge.txt')}:4`, /does not fit in int64/);
    await rejectsNaming(read('gap.txt'), `${p('gap.txt')}:3`, /blank line before the last id/);
    await rejectsNaming(read('two-columns.tsv'), `${p('two-columns.tsv')}:1`, /holds a tab: one id per line/);
    await rejectsNaming(read('absent.txt'), p('absent.txt'), /cannot read/);
  });
});

test('contrastive: no itemEncID at all, a plain-array itemEncID, and a bad pairs shape', async () => {
  await withFiles({
    none: npz({ pairs: npyOf(pairs, [3, 2]), embeds: npyOf(embeds(5), [5, D]) }),
    plain: npz({ itemEncID: npyOf(ids(5), [5]), pairs: npyOf(pairs, [3, 2]), embeds: npyOf(embeds(5), [5, D]) }),
    badPairs: npz({ itemEncID: npyOf(ids(5), [5]), pairs: npyOf(pairs, [2, 3]), embeds: npyOf(embeds(5), [5, D]) }),
    noPairs: npz({ itemEncID: npyOf(ids(5), [5]), embeds: npyOf(embeds(5), [5, D]) }),
  }, async (p) => {
    await rejectsNaming(readForgeContrastive(p('none')), p('none'), /has no 'itemEncID' array.*--ids FILE/);
    const c = await readForgeContrastive(p('plain'));
    assert.deepEqual(c.ids, ids(5));
    await rejectsNaming(readForgeContrastive(p('badPairs')), p('badPairs'), /'pairs' has shape \(2, 3\), expected \[M, 2\]/);
    await rejectsNaming(readForgeContrastive(p('noPairs')), p('noPairs'), /missing array 'pairs'/);
  });
});

test('FORGE readers reject a file that is not a zip', async () => {
  await withFiles({ 'x.npz': 'hello' }, async (p) => {
    await rejectsNaming(readForgeReconstruct(p('x.npz')), p('x.npz'), /not a zip archive/);
    await rejectsNaming(readForgeContrastive(p('x.npz'), { idFile: p('x.npz') }), p('x.npz'), /not a zip archive/);
  });
});
