import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { buildLatentQueryModel } from '../src/numeric/beam-query-graph.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
const bundle = await loadBundle('models/rqkmeans-3x256');
const latent = buildLatentQueryModel(readFileSync(bundle.encoderPath), readFileSync(bundle.beamPath!), 3);
const s = await ort.InferenceSession.create(latent.model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
const data = new Float32Array(512).map(() => Math.random() - 0.5);
const t0 = performance.now(); let R = 0;
while (performance.now() - t0 < 8000) { await s.run({ embedding: new ort.Tensor('float32', data, [1, 512]) }); R++; }
console.log(((performance.now() - t0) / R * 1000).toFixed(1), 'µs per run');
