/**
 * Shared by the HTTP tests of the rerank storages (test/http/api-sq8.test.ts, api-pq.test.ts): fill a service with
 * rows of a matrix (ids i0.., then i5 and i6 deleted) and read the top k (id, score) of each query.
 */
import assert from 'node:assert/strict';
import type { RunningService } from './service.ts';

/** Rows of `vectors` as items i0..i{n-1}, 200 per request; then i5 and i6 deleted. */
export async function fillItems(svc: RunningService, vectors: Float32Array, dim: number): Promise<void> {
  const n = vectors.length / dim;
  const items = Array.from({ length: n }, (_, i) => ({ id: `i${i}`, embedding: Array.from(vectors.subarray(i * dim, (i + 1) * dim)) }));
  for (let s = 0; s < n; s += 200) {
    const res = await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items: items.slice(s, s + 200) } });
    assert.equal(res.statusCode, 200);
  }
  const del = await svc.app.inject({ method: 'POST', url: '/v1/items/delete', payload: { ids: ['i5', 'i6'] } });
  assert.equal(del.statusCode, 200);
}

/** The top k (id, score) of each query, expansion by Hamming-1; each must have had more than `minCandidates`. */
export async function topAnswers(svc: RunningService, queries: Float32Array, dim: number, k: number, minCandidates: number):
  Promise<Array<Array<{ id: string; score: number }>>> {
  const out = [];
  for (let q = 0; q < queries.length / dim; q++) {
    const res = await svc.app.inject({
      method: 'POST',
      url: '/v1/retrieve',
      payload: { embedding: Array.from(queries.subarray(q * dim, (q + 1) * dim)), k, expand: 'hamming1' },
    });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.ok(body.candidates.total > minCandidates, `enough candidates to rank (${body.candidates.total})`);
    out.push(body.items.map((it: { id: string; score: number }) => ({ id: it.id, score: it.score })));
  }
  return out;
}
