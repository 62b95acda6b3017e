import ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/numeric/onnx-builder.ts';
const g = new GraphBuilder('id'); const x = g.input('embedding', 'float32', ['N', 512]); g.output(g.op('Relu', [x]), 'float32', ['N', 512], 'y');
const s: any = await ort.InferenceSession.create(g.serialize({ opset: 17 }), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
const data = new Float32Array(512);
const R = 20000;
for (let k = 0; k < 3; k++) {
  let t0 = performance.now();
  for (let i = 0; i < R; i++) await s.run({ embedding: new ort.Tensor('float32', data, [1, 512]) });
  console.log('session.run', ((performance.now() - t0) / R * 1000).toFixed(1));
  t0 = performance.now();
  for (let i = 0; i < R; i++) await s.handler.run({ embedding: new ort.Tensor('float32', data, [1, 512]) }, { y: null }, {});
  console.log('handler.run', ((performance.now() - t0) / R * 1000).toFixed(1));
  t0 = performance.now();
  for (let i = 0; i < R; i++) await new Promise((r) => setImmediate(r));
  console.log('setImmediate alone', ((performance.now() - t0) / R * 1000).toFixed(1));
}
