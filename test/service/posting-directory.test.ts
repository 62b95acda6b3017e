import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CandidateSet, EXACT } from '../../src/service/candidate-set.ts';
import type { CandidateSource } from '../../src/service/candidates.ts';
import { cellStart, directoryOf } from '../../src/service/posting-directory.ts';
import { PostingIndex } from '../../src/service/posting-index.ts';
import { runOf } from '../../src/service/posting-runs.ts';
import { rng } from '../helpers/random.ts';

const L = 3;

/** `n` rows of random L-level SIDs (codes < k) with distinct keys, sorted by (SID, key) as a run is. */
function sortedPostings(n: number, k: number, seed: number) {
  const r = rng(seed);
  const rows = Array.from({ length: n }, (_, i) => ({ codes: Array.from({ length: L }, () => Math.floor(r() * k)), key: BigInt(i * 7 + 1) }));
  rows.sort((a, b) => a.codes[0]! - b.codes[0]! || a.codes[1]! - b.codes[1]! || a.codes[2]! - b.codes[2]! || (a.key < b.key ? -1 : 1));
  return { count: n, codes: Uint16Array.from(rows.flatMap((x) => x.codes)), keys: BigInt64Array.from(rows.map((x) => x.key)), rows };
}

const none = (): never => assert.fail('the index answers these scans itself');
const fallback: CandidateSource = { exact: none, prefix: none, hamming1: none };

for (const [k, n, depth] of [[5, 3000, 3], [300, 4000, 1], [256, 40_000, 2]] as const) {
  test(`a run's directory (codes < ${k}, ${n} rows: ${depth} levels) and the index's scans through it match a linear filter`, () => {
    const postings = sortedPostings(n, k, k);
    const dir = directoryOf(runOf(postings.count, postings.codes.slice(), postings.keys.slice()), L)!;
    assert.equal(dir.depth, depth);
    const index = new PostingIndex(1, L, postings, fallback);
    const r = rng(k + 1);
    for (let q = 0; q < 300; q++) {
      const sid = Int32Array.from({ length: L }, () => Math.floor(r() * (k + 3))); // a few codes past the radix
      for (let m = 0; m <= L; m++) {
        const rows = postings.rows.flatMap((row, i) => (row.codes.slice(0, m).every((c, j) => c === sid[j]) ? [i] : []));
        const keys = rows.map((i) => postings.rows[i]!.key);
        if (m <= dir.depth && sid.subarray(0, m).every((c) => c < dir.radix) && rows.length > 0) {
          assert.equal(cellStart(dir, sid, 0, m, false), rows[0]);
          assert.equal(cellStart(dir, sid, 0, m, true), rows.at(-1)! + 1);
        }
        const scan = m === L ? index.exact(1, sid, 1_000_000) : index.prefix(1, sid.subarray(0, m), 1_000_000);
        assert.deepEqual(Array.from(scan), keys, `prefix ${Array.from(sid.subarray(0, m))}`);
        // In place (visit), at an offset into a longer array, with a limit inside the range.
        const wide = Int32Array.of(9, ...sid);
        const set = new CandidateSet();
        if (index.accepts(1, wide, 1, m, 3, m === L)) index.visit(wide, 1, m, 3, { rows: (w, from, to) => set.addRows(w, from, to, EXACT, 1000) });
        assert.deepEqual(Array.from(set.keys), keys.slice(0, 3));
      }
    }
  });
}
