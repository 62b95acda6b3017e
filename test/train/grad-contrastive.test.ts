/**
 * Gradients of FORGE's contrastive step (InfoNCE self / ori / cl terms with learnable logit scales, plus the two
 * items' commitment) against central finite differences of a float64 JavaScript reference, on a tiny float64 graph.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildContrastiveGraph } from '../../src/train/rqvae-contrastive-graph.ts';
import type { QuantizerOptions } from '../../src/train/rqvae-graphs.ts';
import { paramLayout } from '../../src/train/rqvae-model.ts';
import { checkGradients, paramFeeds, randn64, scalar64, session, tinyParams, tinyShape, value } from './grad-helpers.ts';
import { referenceContrastive } from './contrastive-reference.ts';

const P = 5;

const cases: { name: string; options: QuantizerOptions }[] = [
  { name: 'forge commitment, gradient codebooks, sinkhorn', options: { assignment: 'sinkhorn', sinkhornIterations: 3, commitment: 'forge', codebookUpdate: 'gradient' } },
  { name: 'classic commitment, EMA codebooks, argmin', options: { assignment: 'argmin', sinkhornIterations: 0, commitment: 'classic', codebookUpdate: 'ema' } },
];

for (const c of cases) {
  test(`contrastive step gradients match finite differences: ${c.name}`, async () => {
    const shape = tinyShape(2, 4);
    const graph = buildContrastiveGraph({ ...c.options, shape, dtype: 'float64' });
    const s = await session(graph.bytes);
    const layout = paramLayout(shape);
    const flat = tinyParams(shape, 21);
    const xa = randn64(P * shape.inputDim, 22);
    const xb = Float64Array.from(xa, (v, i) => v + 0.3 * randn64(xa.length, 23)[i]!); // co-occurring: close pairs
    const beta = 0.25;
    for (const [commitWeight, contrastiveWeight, reconWeight] of [[0, 1, 0], [0.8, 0.3, 0.7]] as const) {
      const extra: Record<string, ort.Tensor> = {
        xa: new ort.Tensor('float64', xa, [P, shape.inputDim]),
        xb: new ort.Tensor('float64', xb, [P, shape.inputDim]),
        commit_weight: scalar64(commitWeight),
        contrastive_weight: scalar64(contrastiveWeight),
        recon_weight: scalar64(reconWeight),
      };
      if (graph.inputs.includes('beta')) extra.beta = scalar64(beta);
      if (graph.inputs.includes('sinkhorn_eps')) extra.sinkhorn_eps = scalar64(10);
      const names = layout.specs.map((p) => p.name);
      const out = await s.run({ ...paramFeeds(layout, flat, names), ...extra });
      const ema = c.options.codebookUpdate === 'ema';
      const opts = (codes: string) => ({
        commitment: c.options.commitment, ema, beta, codes: Array.from(out[codes]!.data as BigInt64Array, Number),
      });
      const ref = referenceContrastive(shape, flat, xa, xb, P, opts('codes_a'), opts('codes_b'));
      for (const [name, v] of [['loss_contrastive', ref.clip], ['loss_self', ref.self], ['loss_ori', ref.ori],
        ['loss_cl', ref.cl], ['loss_commit', ref.commit], ['loss_recon', ref.recon]] as const) {
        assert.ok(Math.abs(value(out, name) - v) < 1e-11 * Math.max(1, Math.abs(v)), `${name}: ${value(out, name)} vs ${v}`);
      }
      const anchorA = { z: ref.a.z, partialSums: ref.a.partialSums };
      const anchorB = { z: ref.b.z, partialSums: ref.b.partialSums };
      const objective = (p: Float64Array) => {
        const r = referenceContrastive(shape, p, xa, xb, P, { ...opts('codes_a'), anchor: anchorA }, { ...opts('codes_b'), anchor: anchorB });
        return contrastiveWeight * r.clip + commitWeight * r.commit + reconWeight * r.recon;
      };
      const result = checkGradients(out, layout, flat, graph.trained, objective, { rtol: 1e-5, atol: 1e-8 });
      assert.ok(result.compared > 100, JSON.stringify(result));
    }
    const expected = [...layout.encoder, ...layout.decoder].flatMap((l) => [l.weight, l.bias]);
    if (c.options.codebookUpdate === 'gradient') expected.push(...layout.codebooks);
    expected.push(...layout.scales);
    assert.deepEqual([...graph.trained].sort(), expected.sort());
    await s.release();
  });
}
