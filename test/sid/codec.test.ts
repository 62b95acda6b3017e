import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isSidxError } from '../../src/errors.ts';
import {
  decodeSidKey,
  encodeSidKey,
  encodeSidPrefix,
  MAX_CODE,
  parseAlgr,
  parseSidText,
  sidToAlgr,
  sidToText,
  sortRowsBySid,
} from '../../src/sid/codec.ts';
import { naturalRotation, rotationOrder, rotationOrders } from '../../src/sid/rotation.ts';
import { rng } from '../helpers/random.ts';

function invalidInput(err: unknown): boolean {
  return isSidxError(err) && err.code === 'SIDX_ERR_INVALID_INPUT';
}

describe('text form', () => {
  test('formats and parses "12-7-300"', () => {
    assert.equal(sidToText(Int32Array.of(12, 7, 300)), '12-7-300');
    assert.deepEqual(parseSidText('12-7-300'), Int32Array.of(12, 7, 300));
    assert.deepEqual(parseSidText('0', 1), Int32Array.of(0));
    assert.deepEqual(parseSidText(`0-${MAX_CODE}`), Int32Array.of(0, MAX_CODE));
  });

  test('round trips random codes', () => {
    const r = rng(1);
    for (let n = 0; n < 500; n++) {
      const codes = new Int32Array(1 + Math.floor(r() * 6));
      for (let l = 0; l < codes.length; l++) codes[l] = Math.floor(r() * (MAX_CODE + 1));
      assert.deepEqual(parseSidText(sidToText(codes), codes.length), codes);
    }
  });

  test('rejects junk with a clear error', () => {
    for (const junk of ['', '-', '12--7', '-1', '1-', 'a-b', ' 12-7', '12-7 ', '012-7', '65536', '1.5', '12_7', '+1', '1e3', '0x10', '１２']) {
      assert.throws(() => parseSidText(junk), (e: unknown) => invalidInput(e) && /invalid SID|exceeds/.test((e as Error).message), junk);
    }
    assert.throws(() => parseSidText('1-2', 3), /has 2 levels, expected 3/);
    assert.throws(() => parseSidText(42 as unknown as string), invalidInput);
    assert.throws(() => sidToText(Int32Array.of(1, -2)), invalidInput);
    assert.throws(() => sidToText(new Int32Array(0)), invalidInput);
    assert.throws(() => sidToText(Int32Array.of(MAX_CODE + 1)), invalidInput);
  });
});

describe('AL-GR form', () => {
  const sizes = [8192, 8192, 8192];

  test('offsets level l by l x 8192 (al_sid calc_hr), whatever the codebook sizes, or by an explicit offset', () => {
    assert.equal(sidToAlgr(Int32Array.of(12, 7, 300), sizes), 'C12C8199C16684');
    assert.deepEqual(parseAlgr('C12C8199C16684', sizes), Int32Array.of(12, 7, 300));
    assert.equal(sidToAlgr(Int32Array.of(0, 0, 0), sizes), 'C0C8192C16384');
    assert.equal(sidToAlgr(Int32Array.of(8191, 8191, 8191), sizes), 'C8191C16383C24575');
    // Before: the offset was the sum of the earlier codebook sizes, so a 3 x 64 SID read "C1C66C131".
    assert.equal(sidToAlgr(Int32Array.of(1, 2, 3), [64, 64, 64]), 'C1C8194C16387');
    assert.deepEqual(parseAlgr('C1C8194C16387', [64, 64, 64]), Int32Array.of(1, 2, 3));
    assert.equal(sidToAlgr(Int32Array.of(1, 2, 3), [64, 64, 64], 64), 'C1C66C131');
    assert.deepEqual(parseAlgr('C1C66C131', [64, 64, 64], 'sid', 64), Int32Array.of(1, 2, 3));
    assert.deepEqual(parseAlgr('C1C2C3', [64, 64, 64], 'sid', 0), Int32Array.of(1, 2, 3));
    assert.throws(() => parseAlgr('C1C66C131', [64, 64, 64]), /token 1 is 66, level 1 accepts 8192\.\.8255 \(code \+ 1 x token offset 8192\)/);
    for (const bad of [-1, 1.5, 2 ** 24 + 1, Number.NaN]) {
      assert.throws(() => parseAlgr('C1C66C131', [64, 64, 64], 'sid', bad), /token offset must be an integer/, String(bad));
      assert.throws(() => sidToAlgr(Int32Array.of(1, 2, 3), [64, 64, 64], bad), invalidInput, String(bad));
    }
  });

  test('round trips random codes with uneven codebooks', () => {
    const r = rng(2);
    for (let n = 0; n < 300; n++) {
      const levels = 1 + Math.floor(r() * 5);
      const ks = Array.from({ length: levels }, () => 1 + Math.floor(r() * 65536));
      const codes = Int32Array.from(ks, (k) => Math.floor(r() * k));
      assert.deepEqual(parseAlgr(sidToAlgr(codes, ks), ks), codes);
      const offset = Math.floor(r() * 70000);
      assert.deepEqual(parseAlgr(sidToAlgr(codes, ks, offset), ks, 'sid', offset), codes);
    }
  });

  test('rejects junk and out-of-range tokens', () => {
    for (const junk of ['', 'C', 'C12C8199', 'C12C8199C16684C1', 'c12C8199C16684', 'C12 C8199C16684', 'C012C8199C16684', '12C8199C16684', 'C-1C8199C16684']) {
      assert.throws(() => parseAlgr(junk, sizes), invalidInput, junk);
    }
    assert.throws(() => parseAlgr('C8192C8199C16684', sizes), /token 0 is 8192, level 0 accepts 0\.\.8191/);
    assert.throws(() => parseAlgr('C12C100C16684', sizes), /token 1 is 100, level 1 accepts 8192\.\.16383/);
    assert.throws(() => sidToAlgr(Int32Array.of(12, 8192, 0), sizes), invalidInput);
    assert.throws(() => sidToAlgr(Int32Array.of(12, 7), sizes), invalidInput);
    assert.throws(() => sidToAlgr(Int32Array.of(1), [65537]), invalidInput);
    assert.throws(() => sidToAlgr(Int32Array.of(1), [0]), invalidInput);
  });
});

describe('key bytes', () => {
  test('rotation i lists the other positions in order, then i (DESIGN: (c1,c3,c2), (c2,c3,c1))', () => {
    assert.deepEqual(rotationOrders(3), [Uint8Array.of(1, 2, 0), Uint8Array.of(0, 2, 1), Uint8Array.of(0, 1, 2)]);
    assert.deepEqual(rotationOrder(1, 0), Uint8Array.of(0));
    assert.equal(naturalRotation(4), 3);
    rotationOrder(3, 0)[0] = 9; // copies: the cache is not affected
    assert.deepEqual(rotationOrder(3, 0), Uint8Array.of(1, 2, 0));
  });

  test('layout: model u16 BE, rotation byte, codes u16 BE in key order', () => {
    const key = encodeSidKey(0x0102, 0, Int32Array.of(12, 7, 300));
    assert.deepEqual([...key], [1, 2, 0, 0, 7, 1, 44, 0, 12]);
    assert.deepEqual([...encodeSidKey(5, 2, Int32Array.of(12, 7, 300))], [0, 5, 2, 0, 12, 0, 7, 1, 44]);
    assert.deepEqual([...encodeSidPrefix(5, 2, Int32Array.of(12), 3)], [0, 5, 2, 0, 12]);
  });

  test('decode inverts encode for every rotation, ignoring trailing bytes', () => {
    const r = rng(3);
    for (let n = 0; n < 200; n++) {
      const levels = 1 + Math.floor(r() * 6);
      const codes = Int32Array.from({ length: levels }, () => Math.floor(r() * (MAX_CODE + 1)));
      const model = Math.floor(r() * 65536);
      for (let rot = 0; rot < levels; rot++) {
        const key = Buffer.concat([encodeSidKey(model, rot, codes), Buffer.from([9, 9, 9])]);
        assert.deepEqual(decodeSidKey(key, levels), { model, rotation: rot, codes });
      }
    }
  });

  test('natural-order key bytes sort like the codes', () => {
    const r = rng(4);
    const sids = Array.from({ length: 400 }, () => Int32Array.from({ length: 3 }, () => Math.floor(r() * 300) * (r() < 0.5 ? 1 : 200)));
    const byCodes = [...sids].sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    const byKey = [...sids].sort((a, b) => Buffer.compare(encodeSidKey(7, 2, a), encodeSidKey(7, 2, b)));
    assert.deepEqual(byKey, byCodes);
  });

  test('rejects out-of-range model, rotation and codes', () => {
    assert.throws(() => encodeSidKey(65536, 0, Int32Array.of(1)), invalidInput);
    assert.throws(() => encodeSidKey(-1, 0, Int32Array.of(1)), invalidInput);
    assert.throws(() => encodeSidKey(1, 3, Int32Array.of(1, 2, 3)), invalidInput);
    assert.throws(() => encodeSidKey(1, 0, Int32Array.of(1, 65536)), invalidInput);
    assert.throws(() => encodeSidPrefix(1, 2, Int32Array.of(1, 2, 3, 4), 3), invalidInput);
    assert.throws(() => decodeSidKey(Buffer.alloc(4), 3), invalidInput);
  });
});

test('sortRowsBySid orders rows by their codes level by level, equal SIDs by row index', () => {
  const codes = Int32Array.from([3, 1, 0, 2, 3, 0, 2, 9, 0, 2, 1, 0, 3, 0]); // 7 rows x 2 levels
  assert.deepEqual([...sortRowsBySid(Int32Array.from([0, 1, 2, 3, 4, 5, 6]), codes, 2)], [1, 4, 5, 3, 2, 6, 0]);
  assert.deepEqual([...sortRowsBySid(Int32Array.from([6, 2, 0]), codes, 2)], [2, 6, 0], 'a subset of the rows');
});

