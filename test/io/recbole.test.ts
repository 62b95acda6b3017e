import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRecboleInter } from '../../src/io/recbole.ts';
import { interactionCount, itemsOf } from '../../src/io/interactions.ts';
import { SidxError } from '../../src/errors.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';

const HEADER = 'user_id:token\titem_id_list:token_seq\titem_id:token';
const shared = (split: string) => sharedFile('scientific', `${split}.inter.tsv`);
const skip = skipWithoutShared('scientific', 'train.inter.tsv') || skipWithoutShared('scientific', 'valid.inter.tsv')
  || skipWithoutShared('scientific', 'test.inter.tsv');

/** The file parsed the naive way, to check the reader against. */
function naive(path: string): string[][] {
  return readFileSync(path, 'utf8').split('\n').slice(1).filter((l) => l.length > 0).map((l) => l.split('\t'));
}

test('reads the shared scientific train/valid/test .inter files', { skip }, async () => {
  const counts: Record<string, number> = {};
  for (const split of ['train', 'valid', 'test']) {
    const r = await readRecboleInter(shared(split));
    const rows = naive(shared(split));
    counts[split] = r.n;
    assert.equal(r.n, rows.length);
    assert.equal(r.users.length, r.n);
    assert.equal(r.offsets.length, r.n + 1);
    assert.equal(r.targets.length, r.n);
    assert.equal(r.offsets[r.n], r.items.length);
    rows.forEach(([user, history, target], i) => {
      assert.equal(r.users[i], user);
      assert.deepEqual([...itemsOf(r, i)], history!.split(' ').map(Number));
      assert.equal(r.targets[i], Number(target));
    });
    assert.equal(new Set(r.users).size, 2928);
    assert.ok(r.maxItem <= 1584, 'item indices index the 1,585 items');
  }
  assert.deepEqual(counts, { train: 10928, valid: 2928, test: 2928 });
});

test('scientific: test rows hold each user\'s full sequence (19,712 interactions) and extend the valid rows', { skip }, async () => {
  const valid = await readRecboleInter(shared('valid'));
  const test = await readRecboleInter(shared('test'));
  assert.equal(interactionCount(test), 19712);
  assert.deepEqual(test.users, valid.users);
  for (let i = 0; i < test.n; i++) {
    assert.deepEqual([...itemsOf(test, i)], [...itemsOf(valid, i), valid.targets[i]]);
  }
  assert.deepEqual([...itemsOf(test, 0)], [0, 1, 2, 3]);
  assert.equal(test.targets[0], 4);
});

async function withTsv(text: string, fn: (path: string) => Promise<void>) {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'x.inter');
    writeFileSync(path, text);
    await fn(path);
  } finally {
    cleanup();
  }
}

test('columns in any order, extra columns, CRLF, empty history', async () => {
  const text = 'item_id:token\ttimestamp:float\tuser_id:token\titem_id_list:token_seq\r\n7\t1.5\tu1\t1 2 3\r\n0\t2\tu2\t\r\n';
  await withTsv(text, async (path) => {
    const r = await readRecboleInter(path);
    assert.deepEqual(r.users, ['u1', 'u2']);
    assert.deepEqual(r.offsets, Int32Array.from([0, 3, 3]));
    assert.deepEqual(r.items, Int32Array.from([1, 2, 3]));
    assert.deepEqual(r.targets, Int32Array.from([7, 0]));
    assert.equal(r.maxItem, 7);
    assert.equal(r.file, path);
  });
});

test('bad header and bad rows are errors naming the file and the line', async () => {
  const cases: [string, number, RegExp][] = [
    ['user_id\titem_id_list\titem_id\n0\t1\t2\n', 1, /bad header: expected tab-separated columns user_id:token, item_id_list:token_seq, item_id:token/],
    ['user_id:token,item_id_list:token_seq,item_id:token\n', 1, /bad header/],
    [`${HEADER}\n0\t1 2\t3\n1\t4 x5\t6\n`, 3, /item_id_list:token_seq token 2 "x5" is not an item index/],
    [`${HEADER}\n0\t1 2\t3\n1\t4 -5\t6\n`, 3, /token 2 "-5" is not an item index/],
    [`${HEADER}\n0\t1 2\n`, 2, /expected 3 tab-separated fields, got 2/],
    [`${HEADER}\n\n0\t1 2\tB00X\n`, 3, /item_id:token "B00X" is not an item index/],
    [`${HEADER}\n0\t1 2\t\n`, 2, /item_id:token "" is not an item index/],
    [`${HEADER}\n\t1 2\t3\n`, 2, /empty user_id:token/],
    [`${HEADER}\n0\t99999999999\t3\n`, 2, /token 1 "99999999999" is not an item index \(integer 0\.\.2147483647\)/],
  ];
  for (const [text, line, pattern] of cases) {
    await withTsv(text, async (path) => {
      await assert.rejects(readRecboleInter(path), (err: unknown) => {
        assert.ok(err instanceof SidxError);
        assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
        assert.equal(err.field, `${path}:${line}`);
        assert.ok(err.message.startsWith(`${path}:${line}: `), err.message);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }
});

test('an empty file and a missing file', async () => {
  await withTsv('', async (path) => {
    await assert.rejects(readRecboleInter(path), /empty file: expected a header/);
  });
  await withTsv(`${HEADER}\n`, async (path) => {
    const r = await readRecboleInter(path);
    assert.equal(r.n, 0);
    assert.equal(r.maxItem, -1);
  });
  await assert.rejects(readRecboleInter('/nonexistent/a.inter'), /^SidxError: \/nonexistent\/a\.inter: cannot read/);
});
