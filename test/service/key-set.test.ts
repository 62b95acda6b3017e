import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeySet, keyWords } from '../../src/service/key-set.ts';
import { rng } from '../helpers/random.ts';

test('KeySet holds the same keys as a Set<bigint> (words that collide in one half, growth past the hint, bigints)', () => {
  const r = rng(3);
  const keys = BigInt64Array.from({ length: 20_000 }, (_, i) => {
    const hi = BigInt(Math.floor(r() * 4)); // few distinct high words: keys differ in one word only
    const lo = BigInt(i % 3 === 0 ? Math.floor(r() * 64) : Math.floor(r() * 2 ** 32));
    return (hi << 32n) | lo;
  });
  keys[0] = (1n << 63n) - 1n; // the largest internal key
  const set = new KeySet(10); // grows many times
  const reference = new Set<bigint>();
  const words = keyWords(keys);
  keys.forEach((key, i) => {
    const fresh = i % 2 === 0 ? set.add(words[2 * i]!, words[2 * i + 1]!) : set.addKey(key);
    assert.equal(fresh, !reference.has(key), `key ${key}`);
    reference.add(key);
  });
  assert.equal(set.size, reference.size);
  for (const key of reference) assert.equal(set.addKey(key), false);
  assert.equal(set.addKey(1n << 40n), !reference.has(1n << 40n));
});
