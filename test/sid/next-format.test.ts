import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SidTrie } from '../../src/sid/sid-trie.ts';
import { codeBytesFor, decodeNext, encodeNext } from '../../src/sid/next-format.ts';

test('SIDN: code width from the codebooks; 2- and 4-byte codes round-trip, byte for byte where laid out by hand', () => {
  assert.equal(codeBytesFor([256, 65_536]), 2);
  assert.equal(codeBytesFor([256, 65_537]), 4);

  const t = new SidTrie(2);
  t.add([70_000, 3], 2);
  t.add([70_000, 1], 1);
  t.add([5, 65_535], 1);
  const entries = [t.next([]), t.next([70_000]), t.next([5, 65_535]), t.next([])];
  const wide = encodeNext({ levels: 2, codeBytes: 4, next: entries });
  assert.deepEqual(decodeNext(wide), {
    levels: 2, codeBytes: 4,
    next: [{ codes: [5, 70_000], counts: [1, 3] }, { codes: [1, 3], counts: [1, 2] }, { codes: [], counts: [] }, { codes: [5, 70_000], counts: [1, 3] }],
  });

  const narrow = encodeNext({ levels: 2, codeBytes: 2, next: [t.next([5]), t.next([9])] });
  const want = Buffer.alloc(12 + 4 + 2 + 4 + 4);
  want.write('SIDN', 0, 'latin1');
  want[4] = 1;
  want[5] = 2;
  want[6] = 2;
  want.writeUInt32LE(2, 8);
  want.writeUInt32LE(1, 12);
  want.writeUInt16LE(65_535, 16);
  want.writeUInt32LE(1, 18);
  want.writeUInt32LE(0, 22);
  assert.deepEqual(narrow, want, 'unpadded: a u32 count may start at an odd offset');

  // A write replaces the trie's entry object, so the next answer is built afresh.
  t.add([5, 65_535], 1);
  assert.deepEqual(decodeNext(encodeNext({ levels: 2, codeBytes: 2, next: [t.next([5])] })).next, [{ codes: [65_535], counts: [2] }]);
  assert.throws(() => decodeNext(narrow.subarray(0, narrow.length - 1)), { code: 'SIDX_ERR_INVALID_INPUT' });
});
