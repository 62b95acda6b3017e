import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { leaveOneOut, readSequences } from '../../src/io/sequences.ts';
import { itemsOf } from '../../src/io/interactions.ts';
import { SidxError } from '../../src/errors.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';

test('reads instruments/inter.json: 24,772 users, 206,153 interactions', { skip: skipWithoutShared('instruments', 'inter.json') }, async () => {
  const s = await readSequences(sharedFile('instruments', 'inter.json'));
  assert.equal(s.n, 24772);
  assert.equal(s.users.length, 24772);
  assert.equal(s.items.length, 206153);
  assert.equal(s.offsets[s.n], 206153);
  assert.deepEqual(s.users.slice(0, 3), ['0', '1', '2']);
  assert.deepEqual([...itemsOf(s, 0)], Array.from({ length: 19 }, (_, i) => i));
  let max = 0;
  let min = Infinity;
  for (let u = 0; u < s.n; u++) min = Math.min(min, s.offsets[u + 1]! - s.offsets[u]!);
  for (const v of s.items) max = Math.max(max, v);
  assert.equal(max, 9921, 'indexes the 9,922 items of sasrec_emb.npy');
  assert.equal(min, 5);

  const split = leaveOneOut(s);
  assert.equal(split.short.length, 0);
  assert.equal(split.valid.users.length, 24772);
  assert.equal(split.test.targets.length, 24772);
  assert.equal(split.train.items.length, 206153 - 2 * 24772);
  assert.equal(split.valid.items.length, 206153 - 2 * 24772);
  assert.equal(split.test.items.length, 206153 - 24772);
  assert.equal(split.test.targets[0], 18);
  assert.equal(split.valid.targets[0], 17);
  assert.deepEqual([...itemsOf(split.valid, 0)], Array.from({ length: 17 }, (_, i) => i));
  assert.deepEqual([...itemsOf(split.train, 0)], Array.from({ length: 17 }, (_, i) => i));
  assert.deepEqual([...itemsOf(split.test, 0)], Array.from({ length: 18 }, (_, i) => i));
});

test('leave-one-out on a small set, with a short user', () => {
  const seqs = { users: ['a', 'b', 'c'], offsets: Int32Array.from([0, 4, 6, 9]), items: Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
  const s = leaveOneOut(seqs);
  assert.deepEqual(s.short, ['b']);
  assert.deepEqual(s.train, { users: ['a', 'b', 'c'], offsets: Int32Array.from([0, 2, 4, 5]), items: Int32Array.from([1, 2, 5, 6, 7]) });
  assert.deepEqual(s.valid, { users: ['a', 'c'], offsets: Int32Array.from([0, 2, 3]), items: Int32Array.from([1, 2, 7]), targets: Int32Array.from([3, 8]) });
  assert.deepEqual(s.test, { users: ['a', 'c'], offsets: Int32Array.from([0, 3, 5]), items: Int32Array.from([1, 2, 3, 7, 8]), targets: Int32Array.from([4, 9]) });
  const two = leaveOneOut(seqs, { minLength: 2 });
  assert.deepEqual(two.short, []);
  assert.deepEqual([...itemsOf(two.valid, 1)], []);
  assert.equal(two.valid.targets[1], 5);
  assert.deepEqual([...itemsOf(two.test, 1)], [5]);
  assert.throws(() => leaveOneOut(seqs, { minLength: 1 }), SidxError);
});

async function withJson(text: string, fn: (path: string) => Promise<void>) {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'inter.json');
    writeFileSync(path, text);
    await fn(path);
  } finally {
    cleanup();
  }
}

test('bad JSON and bad entries are errors naming the file and the line', async () => {
  const cases: [string, number, RegExp][] = [
    ['{\n  "a": [1, 2],\n  "b": [3 4]\n}\n', 3, /not valid JSON/],
    ['[1, 2, 3]', 1, /expected a JSON object/],
    ['{\n  "a": [1, 2],\n  "b": {"x": 1}\n}', 3, /user "b" \(entry 2\): expected an array of item indices, got object/],
    ['{\n  "u1": [1],\n  "u2": [\n    1,\n    "B00X"\n  ]\n}', 3, /user "u2" \(entry 2\): item 2 is "B00X", expected an item index/],
    ['{"a": [1.5]}', 1, /item 1 is 1\.5/],
    ['{"a": [-1]}', 1, /item 1 is -1/],
  ];
  for (const [text, line, pattern] of cases) {
    await withJson(text, async (path) => {
      await assert.rejects(readSequences(path), (err: unknown) => {
        assert.ok(err instanceof SidxError);
        assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
        assert.ok(err.message.startsWith(`${path}:${line}: `), err.message);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }
  await assert.rejects(readSequences('/nonexistent/inter.json'), /^SidxError: \/nonexistent\/inter\.json: cannot read/);
});
