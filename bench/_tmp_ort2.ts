import ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/numeric/onnx-builder.ts';
async function time(model: Uint8Array, label: string) {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  for (const n of [1, 4]) {
    const data = new Float32Array(n * 512).map(() => Math.random() - 0.5);
    for (let i = 0; i < 300; i++) await s.run({ embedding: new ort.Tensor('float32', data, [n, 512]) });
    const t0 = performance.now(); const R = 3000;
    for (let i = 0; i < R; i++) await s.run({ embedding: new ort.Tensor('float32', data, [n, 512]) });
    console.log(label, n, ((performance.now() - t0) / R * 1000).toFixed(1), 'µs per run');
  }
}
{ const g = new GraphBuilder('id'); const x = g.input('embedding', 'float32', ['N', 512]); g.output(g.op('Relu', [x]), 'float32', ['N', 512], 'y'); await time(g.serialize({ opset: 17 }), 'relu'); }
for (const K of [256, 768]) {
  const g = new GraphBuilder('mm'); const x = g.input('embedding', 'float32', ['N', 512]);
  const w = g.initializer('w', new Float32Array(512 * K).map(() => Math.random()), [K, 512]);
  g.output(g.op('Gemm', [x, w], { transB: 1 }), 'float32', ['N', K], 'y'); await time(g.serialize({ opset: 17 }), `gemm 512x${K}`);
}
