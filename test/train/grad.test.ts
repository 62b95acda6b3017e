/**
 * Gradients of every loss term of the RQ-VAE training step (reconstruction, FORGE and classic commitment, with
 * gradient and EMA codebooks, argmin and Sinkhorn assignment, denoising) against central finite differences, on a tiny model
 * built as a float64 graph; and the forward loss values against a plain JavaScript reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildStepGraph, type StepGraphOptions } from '../../src/train/rqvae-graphs.ts';
import { paramLayout } from '../../src/train/rqvae-model.ts';
import { checkGradients, paramFeeds, randn64, scalar64, session, tinyParams, tinyShape, value } from './grad-helpers.ts';
import { referenceForward } from './rqvae-reference.ts';

const N = 7;

interface Case {
  name: string;
  options: Omit<StepGraphOptions, 'shape' | 'dtype'>;
  levels?: number;
  /** Width of a frozen input projection (no gradient of its own). */
  projection?: number;
}

const cases: Case[] = [
  { name: 'forge commitment, gradient codebooks, argmin', options: { assignment: 'argmin', sinkhornIterations: 0, commitment: 'forge', codebookUpdate: 'gradient' } },
  { name: 'forge commitment, gradient codebooks, sinkhorn', options: { assignment: 'sinkhorn', sinkhornIterations: 3, commitment: 'forge', codebookUpdate: 'gradient' } },
  { name: 'classic commitment, gradient codebooks, 3 levels', options: { assignment: 'argmin', sinkhornIterations: 0, commitment: 'classic', codebookUpdate: 'gradient' }, levels: 3 },
  { name: 'forge commitment, EMA codebooks', options: { assignment: 'argmin', sinkhornIterations: 0, commitment: 'forge', codebookUpdate: 'ema' } },
  { name: 'denoising (reconstruction target other than x), sinkhorn', options: { assignment: 'sinkhorn', sinkhornIterations: 3, commitment: 'forge', codebookUpdate: 'gradient', denoise: true } },
  { name: 'classic commitment, EMA codebooks, one level (VQ-VAE)', options: { assignment: 'sinkhorn', sinkhornIterations: 2, commitment: 'classic', codebookUpdate: 'ema' }, levels: 1 },
  { name: 'frozen input projection, sinkhorn', options: { assignment: 'sinkhorn', sinkhornIterations: 3, commitment: 'forge', codebookUpdate: 'gradient' }, projection: 4 },
];

for (const c of cases) {
  test(`step graph gradients match finite differences: ${c.name}`, async () => {
    const shape = { ...tinyShape(c.levels ?? 2, 4), ...(c.projection === undefined ? {} : { inputProjection: c.projection }) };
    const graph = buildStepGraph({ ...c.options, shape, dtype: 'float64' });
    const s = await session(graph.bytes);
    const layout = paramLayout(shape);
    const flat = tinyParams(shape, 11);
    const x = randn64(N * shape.inputDim, 12);
    const target = c.options.denoise === true ? randn64(N * shape.inputDim, 13) : undefined;
    const beta = 0.25;
    for (const commitWeight of [0, 1.7]) {
      const extra: Record<string, ort.Tensor> = {
        x: new ort.Tensor('float64', x, [N, shape.inputDim]),
        commit_weight: scalar64(commitWeight),
      };
      if (target) extra.target = new ort.Tensor('float64', target, [N, shape.inputDim]);
      if (graph.inputs.includes('beta')) extra.beta = scalar64(beta);
      if (graph.inputs.includes('sinkhorn_eps')) extra.sinkhorn_eps = scalar64(10);
      assert.deepEqual([...s.inputNames].sort(), [...graph.inputs].sort());
      const names = layout.specs.map((p) => p.name).filter((n) => graph.inputs.includes(n));
      const out = await s.run({ ...paramFeeds(layout, flat, names), ...extra });
      const codes = Array.from(out.codes!.data as BigInt64Array, Number);
      const options = { commitment: c.options.commitment, ema: c.options.codebookUpdate === 'ema', beta, codes, ...(target ? { target } : {}) };
      const ref = referenceForward(shape, flat, x, N, options);
      // Loss values against the JS reference, quantising with the graph's own codes.
      assert.ok(Math.abs(value(out, 'loss_recon') - ref.recon) < 1e-12 * Math.max(1, ref.recon));
      assert.ok(Math.abs(value(out, 'loss_commit') - ref.commit) < 1e-12 * Math.max(1, ref.commit));
      const anchor = { z: ref.z, partialSums: ref.partialSums };
      const objective = (p: Float64Array) => {
        const r = referenceForward(shape, p, x, N, { ...options, anchor });
        return r.recon + commitWeight * r.commit;
      };
      const result = checkGradients(out, layout, flat, graph.trained, objective);
      assert.ok(result.compared > 100, JSON.stringify(result));
      if (c.options.assignment === 'argmin') assert.deepEqual(codes, Array.from(ref.argminCodes));
    }
    const expected = [...layout.encoder.slice(layout.frozenEncoderLayers), ...layout.decoder].flatMap((l) => [l.weight, l.bias]);
    assert.equal(layout.frozenEncoderLayers, c.projection === undefined ? 0 : 1);
    if (c.options.codebookUpdate === 'gradient') expected.push(...layout.codebooks);
    assert.deepEqual([...graph.trained].sort(), expected.sort());
    await s.release();
  });
}
