/**
 * Graph fragments for fully connected networks, forward and hand-derived backward, emitted into a GraphBuilder.
 *
 * A dense layer holds W [in, out] (row-major, so the forward product needs no transpose) and b [out]:
 *   pre = x W + b            one Gemm
 *   out = relu(pre)          when the layer has an activation, else out = pre
 * Backward, for the gradient g_out of the loss with respect to `out`:
 *   g_pre = g_out * sign(out)          (relu: out >= 0, so sign(out) is the 0/1 mask of pre > 0)
 *   g_W   = x^T g_pre                   Gemm(transA)
 *   g_b   = sum over rows of g_pre      ReduceSum(axes 0)
 *   g_x   = g_pre W^T                   Gemm(transB), only when the caller needs it
 * The element type is `float32` or `float64` (the gradient tests build float64 graphs to compare against central
 * finite differences); every constant these helpers create has that type.
 */
import { GraphBuilder, attr } from './onnx-builder.ts';

export type FloatType = 'float32' | 'float64';

export interface DenseLayer {
  /** Value name of W [inDim, outDim]. */
  weight: string;
  /** Value name of b [outDim]. */
  bias: string;
  inDim: number;
  outDim: number;
  relu: boolean;
}

/** What the backward pass needs from a layer's forward pass. */
export interface DenseTrace {
  input: string;
  output: string;
}

export interface DenseGrads {
  weight: string;
  bias: string;
}

/** A scalar (rank-0) constant of the given float type. */
export function scalar(g: GraphBuilder, dtype: FloatType, value: number): string {
  return dtype === 'float64' ? g.constant(Float64Array.of(value), [], 'f64') : g.float32([value], []);
}

/** ONNX TensorProto data type code of a float type (for Cast's `to`). */
export function onnxTypeCode(dtype: FloatType): number {
  return dtype === 'float64' ? 11 : 1;
}

/** Number of rows of a [N, ...] value as a scalar of `dtype` (for means over a dynamic batch). */
export function rowCount(g: GraphBuilder, value: string, dtype: FloatType): string {
  const n = g.op('Gather', [g.op('Shape', [value]), g.int64([0], [])], { axis: 0 });
  return g.op('Cast', [n], { to: onnxTypeCode(dtype) });
}

/** A zero tensor of static shape `dims` and type `dtype`. */
export function zeros(g: GraphBuilder, dims: readonly number[], dtype: FloatType): string {
  const zero = dtype === 'float64' ? attr.tensor(Float64Array.of(0), [1]) : attr.tensor(Float32Array.of(0), [1]);
  return g.op('ConstantOfShape', [g.int64([...dims])], { value: zero });
}

/** Applies the layers in order to `x`; returns the last output and one trace per layer. */
export function appendMlpForward(g: GraphBuilder, x: string, layers: readonly DenseLayer[]):
  { output: string; traces: DenseTrace[] } {
  let h = x;
  const traces: DenseTrace[] = [];
  for (const layer of layers) {
    const pre = g.op('Gemm', [h, layer.weight, layer.bias]);
    const out = layer.relu ? g.op('Relu', [pre]) : pre;
    traces.push({ input: h, output: out });
    h = out;
  }
  return { output: h, traces };
}

/**
 * Back-propagates `gradOut` (d loss / d output of the last layer) through the layers. Returns the parameter
 * gradients in layer order and, with `inputGrad`, d loss / d input of the first layer.
 */
export function appendMlpBackward(g: GraphBuilder, gradOut: string, layers: readonly DenseLayer[],
  traces: readonly DenseTrace[], options: { inputGrad?: boolean } = {}): { grads: DenseGrads[]; inputGrad?: string } {
  if (traces.length !== layers.length) throw new RangeError(`${layers.length} layers but ${traces.length} traces`);
  const grads: DenseGrads[] = new Array(layers.length);
  const axis0 = g.int64([0]);
  let grad = gradOut;
  let inputGrad: string | undefined;
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i]!;
    const trace = traces[i]!;
    const gPre = layer.relu ? g.op('Mul', [grad, g.op('Sign', [trace.output])]) : grad;
    grads[i] = {
      weight: g.op('Gemm', [trace.input, gPre], { transA: 1 }),
      bias: g.op('ReduceSum', [gPre, axis0], { keepdims: 0 }),
    };
    if (i > 0 || options.inputGrad) {
      grad = g.op('Gemm', [gPre, layer.weight], { transB: 1 });
      if (i === 0) inputGrad = grad;
    }
  }
  return inputGrad === undefined ? { grads } : { grads, inputGrad };
}
