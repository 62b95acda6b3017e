/**
 * The encoder that computes a bundle's `codes` alone, for the runs that use nothing else (upserts without a collision
 * cap, so `sidx index` too, re-index, `/v1/encode`, `sidx encode` without `--collisions cap`, `sidx metrics`): built
 * in memory from encoder.onnx, which stays as it is on disk.
 *
 * ORT runs every node of a model whatever outputs a run asks for, so the top-M outputs cost the same whether read or
 * not; here the nodes only they need are dropped. And where a code is the first index of a sorted TopK (the
 * quantizer's codes come from TopK so that `codes` and `top_codes[:, l, 0]` agree, residual-encoder.ts), that Slice
 * becomes an ArgMin over the same distances: ONNX breaks TopK's ties by the lower index and ArgMin takes the first
 * minimum, so the codes are the same, ties included. On a 3 x 256 x 512 encoder TopK(8) took a fifth of a run.
 */
import onnxProto from 'onnx-proto';
import { GraphBuilder } from './onnx-builder.ts';
import { ENCODER_INPUT, ENCODER_OUTPUTS } from './residual-encoder.ts';

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.IGraphProto;
type Node = onnxProto.onnx.INodeProto;

/** The codes-only encoder of the module doc, serialized; throws when encoder.onnx has no `codes` output. */
export function buildCodesModel(encoderBytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(encoderBytes);
  const graph = model.graph;
  const codes = graph?.output?.find((o) => o.name === ENCODER_OUTPUTS.codes);
  if (!graph || !codes) throw new Error(`encoder.onnx has no "${ENCODER_OUTPUTS.codes}" output`);
  const g = new GraphBuilder('sidx_codes');
  g.adopt(firstIndexAsArgMin(graph), (name) => name);
  g.output(ENCODER_OUTPUTS.codes, 'int64', ['N', shapeDim(codes, 1) ?? 'L']);
  g.prune();
  return g.serialize({ opset: versions(model, 'encoder.onnx').opset, docString: `sidx codes-only ${ENCODER_INPUT} -> ${ENCODER_OUTPUTS.codes}` });
}

/**
 * The default-domain opset and the IR version of a model, for the models rebuilt from it here and in
 * beam-query-graph.ts (which needs its two parts to agree); a model using other domains is refused: the builder writes
 * the default domain's opset alone.
 */
export function versions(model: InstanceType<typeof onnx.ModelProto>, what: string): { opset: number; ir: number } {
  const domains = model.opsetImport.filter((o) => (o.domain ?? '') !== '' && o.domain !== 'ai.onnx');
  if (domains.length > 0) throw new Error(`${what}: uses opset domains ${domains.map((o) => o.domain).join(', ')}`);
  const opset = model.opsetImport.find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  if (!opset) throw new Error(`${what}: has no default-domain opset`);
  return { opset: Number(opset.version), ir: Number(model.irVersion) };
}

/**
 * `graph` with every Slice that takes the first index of a sorted TopK along its own axis (starts 0, ends 1, step 1,
 * constant initializers) replaced by ArgMin (ArgMax for largest) over the TopK's input, keepdims: the same int64
 * [.., 1, ..] tensor. The TopK stays; pruning drops it once nothing reads it.
 */
export function firstIndexAsArgMin(graph: Graph): Graph {
  const ints = int64Initializers(graph);
  const topKByIndices = new Map<string, Node>();
  for (const node of graph.node ?? []) {
    if (node.opType === 'TopK' && (node.domain ?? '') === '' && node.output?.[1] && intAttr(node, 'sorted', 1) === 1) {
      topKByIndices.set(node.output[1], node);
    }
  }
  const node = (graph.node ?? []).map((n) => {
    const topK = n.opType === 'Slice' ? topKByIndices.get(n.input?.[0] ?? '') : undefined;
    if (!topK || !n.output?.[0]) return n;
    const axis = intAttr(topK, 'axis', -1);
    const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => (n.input?.[i] ? ints.get(n.input[i]!) : undefined));
    const single = (v: bigint[] | undefined, want: number) => v !== undefined && v.length === 1 && v[0] === BigInt(want);
    if (!single(starts, 0) || !single(ends, 1) || !single(axes, axis) || (n.input?.[4] && !single(steps, 1))) return n;
    return onnx.NodeProto.create({
      opType: intAttr(topK, 'largest', 1) === 1 ? 'ArgMax' : 'ArgMin', domain: '', name: `${n.name ?? 'slice'}_first_index`,
      input: [topK.input![0]!], output: [n.output[0]],
      attribute: [
        onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: axis }),
        onnx.AttributeProto.create({ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 1 }),
      ],
    });
  });
  return { ...graph, node };
}

/** An INT attribute's value, or `fallback` when the node does not set it. */
function intAttr(node: Node, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a ? Number(a.i) : fallback;
}

/** The graph's int64 initializers by name, as bigint lists (raw little-endian data or int64Data). */
function int64Initializers(graph: Graph): Map<string, bigint[]> {
  const out = new Map<string, bigint[]>();
  for (const t of graph.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.INT64 || !t.name) continue;
    if (t.rawData && t.rawData.length > 0) {
      const raw = new Uint8Array(t.rawData);
      out.set(t.name, Array.from(new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8)));
    } else {
      out.set(t.name, (t.int64Data ?? []).map((v) => BigInt(v.toString())));
    }
  }
  return out;
}

/** A fixed dimension of a value's declared shape, or undefined. */
function shapeDim(value: onnxProto.onnx.IValueInfoProto, i: number): number | undefined {
  const d = value.type?.tensorType?.shape?.dim?.[i];
  return d?.dimValue != null && Number(d.dimValue) > 0 ? Number(d.dimValue) : undefined;
}
