/**
 * The codes holders' memory and transparent huge pages (config `vectors.hugePages`, native/src/slot_codes.cc): with
 * the option on (the default) a full 64 Ki-slot block of sq8 or pq codes is backed by 2 MiB pages, as the process's
 * AnonHugePages shows; with it off, by none. Skipped where the kernel offers no transparent huge pages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { loadFaissBinding, type NativeCodes } from '../../src/vector/binding.ts';

const BLOCK_SLOTS = 1 << 16;
const THP = '/sys/kernel/mm/transparent_hugepage/enabled';
const thpOffered = existsSync(THP) && !readFileSync(THP, 'utf8').includes('[never]');

function anonHugeKiB(): number {
  const m = /AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** AnonHugePages gained while one full block of `codeSize`-byte codes is written, and a read back of two of its rows. */
function fillBlock(codes: NativeCodes, codeSize: number): { hugeKiB: number } {
  const before = anonHugeKiB();
  const rows = new Uint8Array(BLOCK_SLOTS * codeSize);
  for (let i = 0; i < rows.length; i++) rows[i] = (i * 7 + (i >> 9)) & 0xff;
  codes.put(Int32Array.from({ length: BLOCK_SLOTS }, (_, s) => s), rows);
  const hugeKiB = anonHugeKiB() - before;
  assert.equal(codes.bytes, BLOCK_SLOTS * codeSize);
  return { hugeKiB };
}

const cases: Array<{ name: string; codeSize: number; make: (hugePages: boolean) => NativeCodes }> = [
  {
    name: 'sq8',
    codeSize: 512,
    make: (hugePages) => new (loadFaissBinding().Sq8Codes)(512, 'ip', new Float32Array(512).fill(-1), new Float32Array(512).fill(2 / 255), hugePages),
  },
  { name: 'pq', codeSize: 128, make: (hugePages) => new (loadFaissBinding().PqCodes)(512, 'ip', 128, null, hugePages) },
];

for (const c of cases) {
  test(`${c.name} codes: a full block is backed by huge pages with hugePages, by none without`, { skip: !thpOffered && 'no transparent huge pages here' }, () => {
    const on = c.make(true);
    const off = c.make(false);
    try {
      const withHuge = fillBlock(on, c.codeSize);
      const without = fillBlock(off, c.codeSize);
      // A block is 32 or 8 MiB, mapped at any 4 KiB boundary: at least one whole aligned 2 MiB page lies inside it.
      assert.ok(withHuge.hugeKiB >= 2048, `hugePages true: AnonHugePages grew by ${withHuge.hugeKiB} kB`);
      assert.ok(without.hugeKiB < 2048, `hugePages false: AnonHugePages grew by ${without.hugeKiB} kB`);
    } finally {
      on.close();
      off.close();
    }
  });
}

test('sq8 codes score the same whether their memory has huge pages or not', () => {
  const dim = 512;
  const vmin = new Float32Array(dim).fill(-1);
  const step = new Float32Array(dim).fill(2 / 255);
  const vectors = Float32Array.from({ length: 300 * dim }, (_, i) => Math.sin(i * 0.37));
  const query = Float32Array.from({ length: dim }, (_, i) => Math.cos(i * 0.11));
  const slots = Int32Array.from({ length: 300 }, (_, s) => s * 211); // spread over several blocks
  const scores = [true, false].map((hugePages) => {
    const codes = new (loadFaissBinding().Sq8Codes)(dim, 'ip', vmin, step, hugePages);
    try {
      codes.put(slots, codes.encode(vectors));
      return codes.score(query, slots);
    } finally {
      codes.close();
    }
  });
  assert.deepEqual(scores[0], scores[1]);
  assert.ok(scores[0]!.every(Number.isFinite));
});

test('hugePages must be a boolean', () => {
  const zeros = new Float32Array(8);
  assert.throws(() => new (loadFaissBinding().Sq8Codes)(8, 'ip', zeros, zeros, 1 as unknown as boolean), /hugePages must be a boolean/);
});
