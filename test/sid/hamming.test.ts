import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeSidKey } from '../../src/sid/codec.ts';
import {
  freeCodeAfterPrefix,
  hammingDistance,
  hammingPrefixLength,
  hammingScanPrefixes,
} from '../../src/sid/hamming.ts';
import { rng } from '../helpers/random.ts';

test('hammingDistance counts differing positions', () => {
  assert.equal(hammingDistance(Int32Array.of(1, 2, 3), Int32Array.of(1, 2, 3)), 0);
  assert.equal(hammingDistance(Int32Array.of(1, 2, 3), Int32Array.of(1, 9, 3)), 1);
  assert.equal(hammingDistance(Int32Array.of(1, 2, 3), Int32Array.of(0, 9, 8)), 3);
  assert.throws(() => hammingDistance(Int32Array.of(1), Int32Array.of(1, 2)), /different level counts/);
});

/** An in-memory stand-in for the LMDB postings: every rotation's key + item index (u32), sorted bytewise. */
function buildPostings(model: number, items: Int32Array[]): Buffer[] {
  const keys: Buffer[] = [];
  items.forEach((codes, idx) => {
    for (let r = 0; r < codes.length; r++) {
      const suffix = Buffer.alloc(4);
      suffix.writeUInt32BE(idx);
      keys.push(Buffer.concat([encodeSidKey(model, r, codes), suffix]));
    }
  });
  return keys.sort(Buffer.compare);
}

function lowerBound(keys: Buffer[], probe: Buffer): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(keys[mid], probe) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Neighbours found by the rotated prefix scans: "index@position", sorted. */
function viaScans(model: number, postings: Buffer[], query: Int32Array): string[] {
  const found: string[] = [];
  const plen = hammingPrefixLength(query.length);
  hammingScanPrefixes(model, query).forEach((prefix, i) => {
    assert.equal(prefix.length, plen);
    for (let p = lowerBound(postings, prefix); p < postings.length; p++) {
      const key = postings[p];
      if (Buffer.compare(key.subarray(0, plen), prefix) !== 0) break;
      if (freeCodeAfterPrefix(key, plen) === query[i]) continue;
      found.push(`${key.readUInt32BE(key.length - 4)}@${i}`);
    }
  });
  return found.sort();
}

function viaBruteForce(items: Int32Array[], query: Int32Array): string[] {
  const found: string[] = [];
  items.forEach((codes, idx) => {
    if (hammingDistance(codes, query) !== 1) return;
    found.push(`${idx}@${codes.findIndex((c, l) => c !== query[l])}`);
  });
  return found.sort();
}

for (const levels of [1, 2, 3, 4]) {
  for (const k of [2, 5, 40, 65536]) {
    test(`rotated prefix scans find exactly the Hamming-1 neighbours (L=${levels}, K=${k})`, () => {
      const r = rng(levels * 1000 + k);
      const model = 3;
      // Small alphabets make many neighbours; large ones need planted neighbours to be interesting.
      const items: Int32Array[] = [];
      for (let n = 0; n < 600; n++) {
        if (items.length > 0 && r() < 0.4) {
          const base = items[Math.floor(r() * items.length)].slice();
          base[Math.floor(r() * levels)] = Math.floor(r() * k);
          items.push(base);
        } else items.push(Int32Array.from({ length: levels }, () => Math.floor(r() * k)));
      }
      const postings = buildPostings(model, items);
      // Another model's keys must never show up.
      const other = buildPostings(model + 1, items.slice(0, 50));
      const all = [...postings, ...other].sort(Buffer.compare);
      let total = 0;
      for (let q = 0; q < 150; q++) {
        const query = q % 2 === 0 ? items[Math.floor(r() * items.length)] : Int32Array.from({ length: levels }, () => Math.floor(r() * k));
        const expected = viaBruteForce(items, query);
        assert.deepEqual(viaScans(model, all, query), expected);
        total += expected.length;
      }
      assert.ok(total > 0, 'the random data produced some neighbours');
    });
  }
}
