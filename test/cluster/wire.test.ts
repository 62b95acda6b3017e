import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeJson, encodeJson, queryMessage, queryOf, shardOf } from '../../src/cluster/wire.ts';
import { kServiceTestHooks } from '../../src/service/sidx-service.ts';
import { beamNormWeight } from '../../src/service/retrieve-steps.ts';
import { DEFAULT_BEAM_WIDTH, type RetrieveQuery } from '../../src/service/types.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService } from '../helpers/service.ts';

test('shardOf is 32-bit FNV-1a of the UTF-8 id modulo the shard count, and spreads ids', () => {
  assert.equal(shardOf('a', 7), 0xe40c292c % 7, 'FNV-1a("a") = 0xe40c292c');
  assert.equal(shardOf('é', 1000), shardOf('é', 1000));
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[shardOf(`item-${i}`, 4)]!++;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `shard sizes ${counts}`);
});

test('a shard answers a query with the router\'s encoding exactly as when it encodes the query itself', async () => {
  const { dir, cleanup } = tempDir('sidx-wire-');
  const svc = await startService(join(dir, 'data'), join(repoRoot, 'models', 'rqkmeans-3x256'), {}, { encoder: { workers: 1 } });
  try {
    const dim = svc.service.model.inputDim;
    const vectors = randomMatrix(400, dim, 5);
    await svc.service.upsert(Array.from({ length: 400 }, (_, i) => ({ id: `i${i}`, vector: vectors.subarray(i * dim, (i + 1) * dim) })));
    const pool = svc.service[kServiceTestHooks].pool();
    const queries = randomMatrix(8, dim, 6);
    for (let q = 0; q < 8; q++) {
      const embedding = queries.subarray(q * dim, (q + 1) * dim);
      for (const expand of ['beam', 'auto'] as const) {
        const base: RetrieveQuery = { embedding, k: 10, expand, maxCandidates: 200 };
        const encoded = expand === 'beam'
          ? { beam: await pool.beam(embedding, 1, DEFAULT_BEAM_WIDTH, beamNormWeight(svc.service.model.metric, pool.bundle.manifest)) }
          : { enc: await pool.encode(embedding, 1) };
        const sent = decodeJson<ReturnType<typeof queryMessage>>(encodeJson(queryMessage({ ...base, encoded }, svc.service.model.id)));
        assert.equal(sent.model, svc.service.model.id);
        const received = queryOf(sent);
        const got = received.encoded!;
        assert.deepEqual('beam' in encoded ? got.beam : got.enc, 'beam' in encoded ? encoded.beam : encoded.enc, 'the encoding survives the wire');
        assert.deepEqual(received.embedding, embedding);
        const own = await svc.service.retrieve(base);
        const given = await svc.service.retrieve(received);
        assert.deepEqual(given.items, own.items, `query ${q}, ${expand}`);
        assert.deepEqual(given.querySids, own.querySids);
        assert.deepEqual(given.candidates, own.candidates);
      }
    }
  } finally {
    await svc.close();
    cleanup();
  }
});
