/**
 * A set of internal keys (int64) held in typed arrays, probed by the keys' two u32 words (open addressing, linear
 * probing): candidate gathering dedupes thousands of keys per beam query (a shorter prefix's scan returns the deeper
 * prefixes' items again), and a Set<bigint> costs a bigint and a hash of it per key.
 */
const MIN_CAPACITY = 64;

export class KeySet {
  #lo: Int32Array;
  #hi: Int32Array;
  #used: Uint8Array;
  #mask: number;
  size = 0;

  /** `expected`: about how many keys it will hold (it grows past that). */
  constructor(expected: number) {
    let cap = MIN_CAPACITY;
    while (cap < 2 * expected) cap *= 2;
    this.#lo = new Int32Array(cap);
    this.#hi = new Int32Array(cap);
    this.#used = new Uint8Array(cap);
    this.#mask = cap - 1;
  }

  /** Adds the key whose little-endian words are `lo`, `hi`; false when it was there already. */
  add(lo: number, hi: number): boolean {
    lo |= 0;
    hi |= 0;
    const mask = this.#mask;
    let h = (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 15) & mask;
    while (this.#used[h]) {
      if (this.#lo[h] === lo && this.#hi[h] === hi) return false;
      h = (h + 1) & mask;
    }
    this.#used[h] = 1;
    this.#lo[h] = lo;
    this.#hi[h] = hi;
    if (++this.size * 2 > mask) this.#grow();
    return true;
  }

  /** `add` for a bigint key. */
  addKey(key: bigint): boolean {
    return this.add(Number(BigInt.asUintN(32, key)), Number(BigInt.asUintN(32, key >> 32n)));
  }

  #grow(): void {
    const lo = this.#lo;
    const hi = this.#hi;
    const used = this.#used;
    const cap = 2 * (this.#mask + 1);
    this.#lo = new Int32Array(cap);
    this.#hi = new Int32Array(cap);
    this.#used = new Uint8Array(cap);
    this.#mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < used.length; i++) if (used[i]) this.add(lo[i]!, hi[i]!);
  }
}

/** The keys as (low, high) u32 word pairs, without a copy. */
export function keyWords(keys: BigInt64Array): Uint32Array {
  return new Uint32Array(keys.buffer, keys.byteOffset, 2 * keys.length);
}
