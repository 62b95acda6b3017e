/**
 * An item retrieved by its own embedding is found: the query's own SID cell (the encoder's codes) is gathered before
 * the beam, whatever the beam's ranking (models/rqkmeans-3x256 ranks prefixes by partial inner product) and however
 * small the candidate cap, as long as the cell fits in it. Isotropic random vectors concentrate in a few cells of a
 * model trained on real embeddings, the case where the beam alone missed the query's own cell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService } from '../helpers/service.ts';

const DIM = 512;
const N = 1000;
const CAP = 20;

test('every item retrieved by its own embedding under the default beam and a small cap is found, as an exact match', async () => {
  const tmp = tempDir();
  const svc = await startService(join(tmp.dir, 'data'), join(repoRoot, 'models', 'rqkmeans-3x256'), { maxBatch: N });
  try {
    const vectors = randomMatrix(N, DIM, 14);
    const rowOf = (i: number) => vectors.subarray(i * DIM, (i + 1) * DIM);
    const up = await svc.service.upsert(Array.from({ length: N }, (_, i) => ({ id: `r${i}`, vector: rowOf(i) })));
    const cells = new Map<string, number>();
    for (const it of up.items) cells.set(it.sid.join(','), (cells.get(it.sid.join(',')) ?? 0) + 1);
    const largest = Math.max(...cells.values());
    assert.ok(largest > 1 && largest <= CAP, `the largest SID cell holds ${largest} items: it must fit the cap ${CAP}`);

    const missed: number[] = [];
    const outs = [];
    for (let i = 0; i < N; i++) {
      const out = await svc.service.retrieve({ embedding: rowOf(i), k: CAP, maxCandidates: CAP });
      outs.push(out);
      if (!out.items.some((it) => it.id === `r${i}`)) missed.push(i);
    }
    assert.deepEqual(missed, [], `${missed.length} of ${N} items not found by their own embedding`);
    outs.forEach((out, i) => {
      assert.equal(out.expand, 'beam');
      assert.deepEqual(out.querySids[0], up.items[i]!.sid, 'the own SID leads querySids');
      const c = out.candidates;
      assert.equal(c.exact + c.beam + c.prefix + c.hamming1, c.total);
      assert.equal(out.items.find((it) => it.id === `r${i}`)!.match, 'exact');
    });
  } finally {
    await svc.close();
    tmp.cleanup();
  }
});
