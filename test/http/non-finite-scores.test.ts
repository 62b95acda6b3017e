/**
 * A stored vector whose scores overflow float32 (written through the service, below the HTTP norm check, as a catalog
 * from before limits.maxVectorNorm could hold) never turns a retrieve into a 500: a candidate whose exact score is
 * not finite is left out of the ranking, the others are answered as usual.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle } from '../helpers/service.ts';

const DIM = 8;

test('retrieve leaves out candidates whose score is not finite instead of failing the response', async () => {
  const tmp = tempDir();
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 4, seed: 3 });
  const svc = await startService(join(tmp.dir, 'data'), modelDir, { maxCandidates: 1000 });
  try {
    const vectors = randomMatrix(200, DIM, 4);
    await svc.service.upsert(Array.from({ length: 200 }, (_, i) => ({ id: `v${i}`, vector: vectors.subarray(i * DIM, (i + 1) * DIM) })));
    const huge = new Float32Array(DIM).fill(3e38);
    // Partial sums of ±3e38 terms may overflow to Infinity, or to Infinity - Infinity = NaN.
    const mixed = Float32Array.from({ length: DIM }, (_, j) => (j % 2 === 0 ? 3e38 : -3e38));
    const up = await svc.service.upsert([{ id: 'huge', vector: huge }, { id: 'mixed', vector: mixed }]);

    const queries = randomMatrix(40, DIM, 5);
    let overflowed = 0;
    let ranked = 0;
    for (let q = 0; q < 40; q++) {
      const embedding = Array.from(queries.subarray(q * DIM, (q + 1) * DIM));
      const sum = embedding.reduce((a, b) => a + b, 0);
      if (Math.abs(3e38 * sum) > 3.4028234663852886e38) overflowed++;
      for (const payload of [
        { embedding, sids: up.items.map((it) => Array.from(it.sid)), expand: 'none', k: 1000 },
        { embedding, expand: 'hamming1', k: 1000 },
      ]) {
        const res = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload });
        assert.equal(res.statusCode, 200, `query ${q}: ${res.body}`);
        const body = res.json() as { items: Array<{ id: string; score: number }> };
        assert.ok(body.items.length > 0);
        for (const it of body.items) assert.ok(Number.isFinite(it.score), `query ${q}: ${it.id} scored ${it.score}`);
        const ids = new Set(body.items.map((it) => it.id));
        if (payload.sids) {
          if (ids.has('huge')) ranked++;
        }
      }
    }
    assert.ok(overflowed > 10, `${overflowed} of 40 queries overflow the huge item's score`);
    assert.ok(ranked > 0 && ranked <= 40 - overflowed, `huge ranked (finite score) for ${ranked} of 40 queries`);
  } finally {
    await svc.close();
    tmp.cleanup();
  }
});
