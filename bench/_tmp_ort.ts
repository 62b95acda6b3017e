import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { buildLatentQueryModel } from '../src/numeric/beam-query-graph.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
const bundle = await loadBundle('models/rqkmeans-3x256');
const m = bundle.manifest;
const latent = buildLatentQueryModel(readFileSync(bundle.encoderPath), readFileSync(bundle.beamPath!), m.levels);
const s = await ort.InferenceSession.create(latent.model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
console.log(s.outputNames);
for (const n of [1, 2, 4, 8, 16]) {
  const data = new Float32Array(n * 512).map(() => Math.random() - 0.5);
  const feeds = { embedding: new ort.Tensor('float32', data, [n, 512]) };
  for (let i = 0; i < 200; i++) await s.run(feeds);
  const t0 = performance.now(); const R = 2000;
  for (let i = 0; i < R; i++) await s.run({ embedding: new ort.Tensor('float32', data, [n, 512]) });
  const us = (performance.now() - t0) / R * 1000;
  console.log(n, us.toFixed(1), 'µs per run', (us / n).toFixed(1), 'per row');
}
import onnxProto from 'onnx-proto';
const mp = onnxProto.onnx.ModelProto.decode(latent.model);
for (const n of mp.graph!.node!) console.log(n.opType, n.input!.join(','), '->', n.output!.join(','));
for (const t of mp.graph!.initializer!) console.log('init', t.name, t.dims!.join('x'));
