import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evalCommand } from '../../src/cli/eval.ts';
import { buildQueries, loadEvalDataset } from '../../src/eval/eval-dataset.ts';
import { nprobeSweep } from '../../src/eval/eval-faiss.ts';
import { writeNpy } from '../../src/io/npy.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';
import { DIM, N, syntheticEvalSet } from './synthetic-eval-set.ts';

const ROW_KEYS = ['method', 'recall', 'ndcg', 'meanCandidates', 'catalogFraction', 'noCandidateQueries'];
const METHODS = ['exact', 'sid', 'sid+rerank', 'sid+hamming1', 'sid+hamming1+rerank', 'sid+beam', 'sid+beam+rerank', 'ivf-flat'];

test('sidx eval on a synthetic RecBole set: report shape, exact row vs brute force, budgets, IVF, Markdown and SVG', async () => {
  const tmp = tempDir();
  try {
    const { dsDir, modelDir, items } = await syntheticEvalSet(tmp.dir);
    const out = join(tmp.dir, 'out', 'report.json');
    const code = await evalCommand(['--dataset', dsDir, '--model', modelDir, '--out', out, '--k', '10,20', '--budget', '0.03',
      '--beam-width', '32', '--sweep', '0.01,0.03,0.1']);
    assert.equal(code, 0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(Object.keys(report).slice(0, 4), ['dataset', 'model', 'queries', 'rows']);
    assert.equal(report.dataset, 'synthetic');
    assert.equal(report.model, 'synthetic-3x16');
    assert.equal(report.queries, 294, '6 of 300 rows have an empty history');
    assert.deepEqual(report.rows.map((r: { method: string }) => r.method), METHODS);
    for (const row of report.rows) {
      assert.deepEqual(Object.keys(row), ROW_KEYS);
      assert.deepEqual(Object.keys(row.recall), ['10', '20']);
      assert.ok(row.recall['10'] <= row.recall['20'] && row.ndcg['10'] <= row.recall['10']);
    }
    const byName = Object.fromEntries(report.rows.map((r: { method: string }) => [r.method, r]));

    // The exact row against a brute-force inner product in JS.
    const ds = await loadEvalDataset(dsDir);
    const q = buildQueries(ds, 'mean5');
    let hits = 0;
    for (let i = 0; i < q.targets.length; i++) {
      const score = (item: number) => {
        let s = 0;
        for (let j = 0; j < DIM; j++) s += q.vectors[i * DIM + j]! * items[item * DIM + j]!;
        return s;
      };
      const t = score(q.targets[i]!);
      let better = 0;
      for (let item = 0; item < N; item++) if (score(item) > t) better++;
      if (better < 10) hits++;
    }
    assert.ok(Math.abs(byName.exact.recall['10'] - hits / q.targets.length) < 1e-9);
    assert.equal(byName.exact.catalogFraction, 1);

    const budget = Math.max(Math.round(0.03 * N), 20);
    // Reranked, the beam fills the budget; without a rerank it stops at the largest K (the answer is the first K).
    for (const [m, want] of [['sid+beam+rerank', budget], ['sid+beam', 20]] as const) {
      assert.ok(byName[m].meanCandidates <= want && byName[m].meanCandidates > want * 0.9, `${m}: ${byName[m].meanCandidates}`);
    }
    assert.ok(budget > 20, 'the budget is past the largest K, so the two rows differ');
    assert.ok(byName['sid+beam+rerank'].recall['10'] >= byName['sid+hamming1+rerank'].recall['10']);
    assert.ok(byName['sid+beam+rerank'].recall['10'] >= 0.8 * byName.exact.recall['10'], 'clustered data: the beam finds most of exact');
    assert.equal(byName.sid.noCandidateQueries, byName['sid+rerank'].noCandidateQueries);
    assert.deepEqual(report.protocol.sweepCheck, { 'sid+hamming1+rerank': true, 'sid+beam+rerank': true });
    assert.equal(report.protocol.ivf.matchedTo, 'sid+beam+rerank');
    const ivfCurve = report.curves.find((c: { method: string }) => c.method === 'ivf-flat');
    assert.deepEqual(ivfCurve.points.map((p: { parameter: { nprobe: number } }) => p.parameter.nprobe), nprobeSweep(report.protocol.ivf.nlist));
    assert.ok(ivfCurve.points.at(-1).candidates === N, 'probing every list scores every vector');
    const beamCurve = report.curves.find((c: { method: string }) => c.method === 'sid+beam+rerank');
    assert.deepEqual(beamCurve.points.map((p: { parameter: { maxCandidates: number } }) => p.parameter.maxCandidates), [12, 36, 120]);

    assert.equal(report.embeddingHitRate.decodedBy, 'codeword sums');
    assert.equal(report.embeddingHitRate.rows, 294);
    assert.ok(report.embeddingHitRate.decoded > 0 && report.embeddingHitRate.original > 0);
    const md = readFileSync(join(tmp.dir, 'out', 'report.md'), 'utf8');
    assert.match(md, /\| method \| Recall@10 \| Recall@20 \| NDCG@10 \| NDCG@20 \| mean candidates \|/);
    assert.equal(md.split('\n').filter((l) => l.startsWith('| sid')).length, 6);
    const svg = readFileSync(join(tmp.dir, 'out', 'report.svg'), 'utf8');
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const m of ['exact', 'sid+rerank', 'sid+hamming1+rerank', 'sid+beam+rerank', 'ivf-flat']) assert.ok(svg.includes(`>${m}</text>`), m);
  } finally {
    tmp.cleanup();
  }
});

test('eval data sets: JSON sequences split leave-one-out; profiles; a model of the wrong dimension is refused', async () => {
  const tmp = tempDir();
  try {
    writeFileSync(join(tmp.dir, 'inter.json'), JSON.stringify({ u1: [0, 1, 2, 3], u2: [3, 2, 1, 0, 2, 1, 3], u3: [1, 2] }));
    await writeNpy(join(tmp.dir, 'sasrec_emb.npy'), Float32Array.from({ length: 8 }, (_, i) => [3, 0, 0, 4, 1, 0, 0, 2][i]!), [4, 2]);
    const ds = await loadEvalDataset(tmp.dir);
    assert.equal(ds.layout, 'sequences');
    assert.deepEqual(Array.from(ds.test.targets), [3, 3], 'u3 is too short for a test row');
    // Items (3,0), (0,4), (1,0), (0,2) normalise to (1,0), (0,1), (1,0), (0,1).
    const last = buildQueries(ds, 'last');
    assert.deepEqual(Array.from(last.vectors), [1, 0, 0, 1], 'the last history item, L2-normalised');
    // u2's history [3, 2, 1, 0, 2, 1]: the last five [2, 1, 0, 2, 1] -> (3, 2) / 5.
    const mean = buildQueries(ds, 'mean5');
    assert.deepEqual(Array.from(mean.vectors, (v) => Math.round(v * 1e6) / 1e6), [2 / 3, 1 / 3, 0.6, 0.4].map((v) => Math.round(v * 1e6) / 1e6));
    await assert.rejects(evalCommand(['--dataset', tmp.dir, '--model', 'models/default', '--out', join(tmp.dir, 'r.json')]),
      (err: Error & { code?: string }) => err.code === 'SIDX_ERR_DIMENSION' && /512-d input/.test(err.message));
  } finally {
    tmp.cleanup();
  }
});

test('eval data sets: the valid split holds the second-last items (sequences) or valid.inter.tsv (RecBole); a missing one is refused', async () => {
  const tmp = tempDir();
  try {
    const seqDir = join(tmp.dir, 'seq');
    mkdirSync(seqDir);
    writeFileSync(join(seqDir, 'inter.json'), JSON.stringify({ u1: [0, 1, 2, 3], u2: [3, 2, 1, 0, 2, 1, 3], u3: [1, 2] }));
    await writeNpy(join(seqDir, 'sasrec_emb.npy'), Float32Array.from({ length: 8 }, (_, i) => i + 1), [4, 2]);
    const test = await loadEvalDataset(seqDir);
    const valid = await loadEvalDataset(seqDir, { split: 'valid' });
    assert.equal(test.split, 'test');
    assert.equal(valid.split, 'valid');
    assert.deepEqual(Array.from(valid.test.targets), [2, 1], 'the second-last item of each long enough sequence');
    assert.deepEqual(Array.from(valid.test.items), [0, 1, 3, 2, 1, 0, 2], 'the items before it');
    assert.deepEqual(Array.from(test.test.targets), [3, 3]);

    const rbDir = join(tmp.dir, 'recbole');
    mkdirSync(rbDir);
    const header = 'user_id:token\titem_id_list:token_seq\titem_id:token\n';
    writeFileSync(join(rbDir, 'test.inter.tsv'), `${header}0\t0 1\t2\n`);
    await writeNpy(join(rbDir, 'text_emb.npy'), Float32Array.from({ length: 8 }, (_, i) => i + 1), [4, 2]);
    await assert.rejects(loadEvalDataset(rbDir, { split: 'valid' }),
      (err: Error & { code?: string }) => err.code === 'SIDX_ERR_INVALID_INPUT' && /no valid\.inter\.tsv/.test(err.message));
    writeFileSync(join(rbDir, 'valid.inter.tsv'), `${header}0\t0\t1\n1\t3\t0\n`);
    const rb = await loadEvalDataset(rbDir, { split: 'valid' });
    assert.deepEqual(Array.from(rb.test.targets), [1, 0]);
    await assert.rejects(evalCommand(['--dataset', rbDir, '--model', 'models/default', '--out', join(tmp.dir, 'r.json'), '--split', 'train']),
      /--split must be one of test, valid/);
  } finally {
    tmp.cleanup();
  }
});

test('sidx eval on the shared scientific set (first 300 queries): the beam with rerank keeps most of exact recall',
  { skip: skipWithoutShared('scientific', 'test.inter.tsv') }, async () => {
    const tmp = tempDir();
    try {
      const out = join(tmp.dir, 'report.json');
      assert.equal(await evalCommand(['--dataset', sharedFile('scientific'), '--model', 'models/default', '--out', out,
        '--queries', '300', '--sweep', '0.02']), 0);
      const report = JSON.parse(readFileSync(out, 'utf8'));
      const byName = Object.fromEntries(report.rows.map((r: { method: string }) => [r.method, r]));
      assert.equal(report.queries, 300);
      assert.ok(byName['sid+beam+rerank'].catalogFraction <= 0.05);
      assert.ok(byName['sid+beam+rerank'].recall['10'] >= 0.9 * byName.exact.recall['10'],
        `${byName['sid+beam+rerank'].recall['10']} vs exact ${byName.exact.recall['10']}`);
      assert.ok(byName['sid+beam+rerank'].recall['10'] > byName['sid+hamming1+rerank'].recall['10']);
    } finally {
      tmp.cleanup();
    }
  });
