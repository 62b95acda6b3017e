import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { GraphBuilder, attr } from '../../src/numeric/onnx-builder.ts';

test('builds, serializes and runs a graph with initializers, attributes and a dynamic batch dim', async () => {
  const g = new GraphBuilder('affine');
  const x = g.input('x', 'float32', ['N', 3]);
  const w = g.initializer('w', Float32Array.from([1, 0, 0, 1, 1, 1]), [3, 2]);
  const b = g.float32([0.5, -0.5]);
  const y = g.op('Gemm', [x, w, b], { alpha: attr.float(2), beta: attr.float(1) });
  const idx = g.op('ArgMax', [y], { axis: 1, keepdims: 0 });
  const shape = g.op('Shape', [x]);
  const filled = g.op('ConstantOfShape', [shape], { value: attr.tensor(BigInt64Array.from([7n]), [1]) });
  g.output(y, 'float32', ['N', 2], 'y');
  g.output(idx, 'int64', ['N'], 'idx');
  g.output(filled, 'int64', ['N', 3], 'sevens');
  const bytes = g.serialize({ opset: 17, metadata: { purpose: 'test' } });

  const model = onnxProto.onnx.ModelProto.decode(bytes);
  assert.equal(Number(model.opsetImport[0]!.version), 17);
  assert.equal(model.graph?.input?.[0]?.type?.tensorType?.shape?.dim?.[0]?.dimParam, 'N');
  assert.equal(model.metadataProps[0]!.key, 'purpose');

  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 3, 0, 0]), [2, 3]) });
  assert.deepEqual([...(out.y!.data as Float32Array)], [2 * 4 + 0.5, 2 * 5 - 0.5, 2 * 3 + 0.5, 2 * 0 - 0.5]);
  assert.deepEqual([...(out.idx!.data as BigInt64Array)], [1n, 0n]);
  assert.deepEqual(out.sevens!.dims, [2, 3]);
  assert.deepEqual([...(out.sevens!.data as BigInt64Array)], [7n, 7n, 7n, 7n, 7n, 7n]);
  await s.release();
});

test('int64 initializers round-trip through raw data', async () => {
  const g = new GraphBuilder();
  const i = g.input('i', 'int64', ['N']);
  const table = g.initializer('table', BigInt64Array.from([10n, -20n, 2n ** 40n]), [3]);
  g.output(g.op('Gather', [table, i], { axis: 0 }), 'int64', ['N'], 'out');
  const s = await ort.InferenceSession.create(g.serialize());
  const out = await s.run({ i: new ort.Tensor('int64', BigInt64Array.from([2n, 0n, 1n]), [3]) });
  assert.deepEqual([...(out.out!.data as BigInt64Array)], [2n ** 40n, 10n, -20n]);
  await s.release();
});

test('rejects duplicate names, wrong dims and float values given as plain numbers', () => {
  const g = new GraphBuilder();
  g.input('x', 'float32', [2]);
  assert.throws(() => g.input('x', 'float32', [2]), /already used/);
  assert.throws(() => g.initializer('w', new Float32Array(5), [2, 2]), /hold 4 values, data has 5/);
  assert.throws(() => g.op('LeakyRelu', ['x'], { alpha: 0.1 }), /attr.float/);
  const a = g.fresh('v');
  const b = g.fresh('v');
  assert.notEqual(a, b);
});

test('adopt merges graphs (renamed names, shared inputs, equal initializers stored once); prune drops dead nodes', async () => {
  const part = (scale: number, bias: number) => {
    const g = new GraphBuilder('part');
    const x = g.input('x', 'float32', ['N', 2]);
    const w = g.initializer('w', Float32Array.from([1, 2]), [2]);
    const unused = g.op('Neg', [x]);
    g.output(unused, 'float32', ['N', 2], 'neg');
    g.output(g.op('Add', [g.op('Mul', [x, w]), g.float32([bias])]), 'float32', ['N', 2], 'y');
    return onnxProto.onnx.ModelProto.decode(g.serialize()).graph as onnxProto.onnx.GraphProto;
  };
  const g = new GraphBuilder('merged');
  g.adopt(part(1, 0), (n) => n);
  g.adopt(part(1, 5), (n) => (n === 'x' ? n : `b/${n}`), { dedupe: true });
  g.output('y', 'float32', ['N', 2]);
  g.output('b/y', 'float32', ['N', 2], 'z');
  g.prune();
  const merged = onnxProto.onnx.ModelProto.decode(g.serialize()).graph as onnxProto.onnx.GraphProto;
  assert.deepEqual(merged.input.map((i) => i.name), ['x']);
  const inits = merged.initializer.map((t) => t.name);
  assert.ok(inits.includes('w') && !inits.includes('b/w'), `w is stored once: ${inits}`);
  assert.ok(!merged.node.some((n) => n.opType === 'Neg'), 'the nodes of outputs not declared are pruned');
  const s = await ort.InferenceSession.create(g.serialize());
  const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 1, 2, 3]), [2, 2]) });
  assert.deepEqual([...(out.y!.data as Float32Array)], [1, 2, 2, 6]);
  assert.deepEqual([...(out.z!.data as Float32Array)], [6, 7, 7, 11]);
  await s.release();
  const loop = onnxProto.onnx.GraphProto.create({ node: [onnxProto.onnx.NodeProto.create({
    opType: 'If', input: ['c'], output: ['o'], attribute: [onnxProto.onnx.AttributeProto.create({ name: 'then_branch', g: part(1, 0) })],
  })] });
  assert.throws(() => new GraphBuilder().adopt(loop, (n) => n), /subgraph/);
});
