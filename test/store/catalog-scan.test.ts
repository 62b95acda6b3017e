import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hammingDistance } from '../../src/sid/hamming.ts';
import { Catalog, type UpsertInput } from '../../src/store/catalog.ts';
import { tempDir } from '../helpers/paths.ts';
import { rng } from '../helpers/random.ts';

interface Shape {
  model: number;
  levels: number;
  k: number;
}

// K = 65536 puts codes at the u16 edge (0 and 65535); several models share the catalog.
const SHAPES: Shape[] = [
  { model: 1, levels: 3, k: 12 },
  { model: 2, levels: 1, k: 50 },
  { model: 3, levels: 4, k: 6 },
  { model: 258, levels: 2, k: 65536 },
];
const PER_SHAPE = 2000;
const D = 4;

describe('catalog scans vs brute force', () => {
  let dir: string;
  let cleanup: () => void;
  let cat: Catalog;
  // Live item codes per model, by internal key.
  const truth = new Map<number, Map<bigint, Int32Array>>();

  function randomCodes(r: () => number, s: Shape, near?: Int32Array): Int32Array {
    if (near) {
      const c = near.slice();
      c[Math.floor(r() * s.levels)] = s.k === 65536 ? [0, 65535, Math.floor(r() * 65536)][Math.floor(r() * 3)] : Math.floor(r() * s.k);
      return c;
    }
    return Int32Array.from({ length: s.levels }, () => (s.k === 65536 && r() < 0.3 ? (r() < 0.5 ? 0 : 65535) : Math.floor(r() * s.k)));
  }

  before(() => {
    ({ dir, cleanup } = tempDir('sidx-scan-'));
    cat = Catalog.open(dir);
    const r = rng(42);
    for (const s of SHAPES) {
      const live = new Map<bigint, Int32Array>();
      truth.set(s.model, live);
      const made: Int32Array[] = [];
      for (let start = 0; start < PER_SHAPE; start += 500) {
        const batch: UpsertInput[] = [];
        for (let i = start; i < start + 500; i++) {
          const codes = randomCodes(r, s, made.length > 0 && r() < 0.5 ? made[Math.floor(r() * made.length)] : undefined);
          made.push(codes);
          batch.push({ id: `m${s.model}-${i}`, codes, vector: Float32Array.of(i, s.model, 0, 1) });
        }
        const res = cat.upsertBatch(s.model, batch);
        res.keys.forEach((key, j) => live.set(key, batch[j].codes));
      }
      // Churn: re-upsert some with new codes, delete others.
      const ids = Array.from({ length: PER_SHAPE }, (_, i) => `m${s.model}-${i}`);
      const moved = ids.filter(() => r() < 0.1).map((id) => ({ id, codes: randomCodes(r, s), vector: new Float32Array(D) }));
      const movedRes = cat.upsertBatch(s.model, moved);
      movedRes.keys.forEach((key, j) => live.set(key, moved[j].codes));
      const gone = ids.filter((id) => r() < 0.1 && !moved.some((m) => m.id === id));
      for (const key of cat.deleteBatch(gone).removed) live.delete(key);
    }
  });

  after(async () => {
    await cat.close();
    cleanup();
  });

  function queries(s: Shape, seed: number): Int32Array[] {
    const r = rng(seed);
    const live = [...truth.get(s.model)!.values()];
    return Array.from({ length: 120 }, (_, q) => (q % 2 === 0 ? live[Math.floor(r() * live.length)] : randomCodes(r, s)));
  }

  for (const s of SHAPES) {
    test(`exact (model ${s.model}, L=${s.levels}, K=${s.k})`, () => {
      const live = truth.get(s.model)!;
      assert.equal([...live.keys()].length > PER_SHAPE * 0.8, true);
      for (const q of queries(s, 1)) {
        const expected = [...live].filter(([, c]) => hammingDistance(c, q) === 0).map(([k]) => k).sort((a, b) => (a < b ? -1 : 1));
        assert.deepEqual([...cat.exact(s.model, q, 1_000_000)], expected);
        if (expected.length > 1) assert.deepEqual([...cat.exact(s.model, q, 1)], expected.slice(0, 1));
      }
    });

    test(`prefix (model ${s.model}, L=${s.levels}, K=${s.k})`, () => {
      const live = truth.get(s.model)!;
      const cmp = (a: Int32Array, b: Int32Array) => {
        for (let l = 0; l < a.length; l++) if (a[l] !== b[l]) return a[l] - b[l];
        return 0;
      };
      queries(s, 2).forEach((q, qi) => {
        // The empty prefix lists the whole model: check it for a few queries only.
        for (let len = qi < 3 ? 0 : 1; len <= s.levels; len++) {
          const p = q.subarray(0, len);
          const expected = [...live]
            .filter(([, c]) => p.every((x, l) => c[l] === x))
            .sort(([ka, a], [kb, b]) => cmp(a, b) || (ka < kb ? -1 : 1))
            .map(([k]) => k);
          assert.deepEqual([...cat.prefix(s.model, Int32Array.from(p), 1_000_000)], expected);
        }
      });
    });

    test(`hamming1 (model ${s.model}, L=${s.levels}, K=${s.k})`, () => {
      const live = truth.get(s.model)!;
      let seen = 0;
      for (const q of queries(s, 3)) {
        const expected = [...live]
          .filter(([, c]) => hammingDistance(c, q) === 1)
          .map(([k, c]) => `${k}@${c.findIndex((x, l) => x !== q[l])}:${[...c].join('-')}`)
          .sort();
        const got = cat.hamming1(s.model, q, 1_000_000);
        for (const n of got) assert.equal(hammingDistance(n.codes, q), 1);
        assert.deepEqual(got.map((n) => `${n.key}@${n.position}:${[...n.codes].join('-')}`).sort(), expected);
        // Documented order: last position first.
        for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].position >= got[i].position);
        // A limit returns a prefix of the full answer.
        const few = cat.hamming1(s.model, q, 3);
        assert.deepEqual(few, got.slice(0, 3));
        seen += expected.length;
      }
      assert.ok(seen > 0);
    });
  }
});
