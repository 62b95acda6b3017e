/**
 * A small typed builder for ONNX graphs over onnx-proto (ONNX 1.10 messages, IR version 8).
 *
 * Tensor values are referred to by name (plain strings). Initializers are stored as little-endian `raw_data`
 * straight from typed arrays (no per-element copies into JS number arrays). Graph inputs/outputs may use
 * symbolic dimensions (strings, e.g. 'N') for dynamic batch sizes.
 *
 * Attribute values: a plain integer `number` or `bigint` is INT, a `string` is STRING, a `number[]` is INTS,
 * a `string[]` is STRINGS. Floats must be explicit: `attr.float(1e-6)` / `attr.floats([...])`, because a
 * plain `1` would otherwise be ambiguous (ORT rejects an INT where a FLOAT attribute is declared, at load time).
 *
 * Usage:
 *   const g = new GraphBuilder('encoder');
 *   const x = g.input('x', 'float32', ['N', 4]);
 *   const w = g.initializer('w', new Float32Array(8), [4, 2]);
 *   g.output(g.op('MatMul', [x, w]), 'float32', ['N', 2], 'y');
 *   const bytes = g.serialize({ opset: 17 });
 */
import onnxProto from 'onnx-proto';
import { endianness } from 'node:os';

const { onnx } = onnxProto;
type Onnx = typeof onnx;

export type DType = 'float32' | 'float16' | 'float64' | 'int32' | 'int64' | 'int8' | 'uint8' | 'bool';
/** One dimension of a graph input/output: a fixed size, or a symbolic name for a dynamic size. */
export type Dim = number | string;
export type InitData = Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;

const DTYPE_CODE: Record<DType, number> = {
  float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11,
};

function dtypeOf(data: InitData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

/** An attribute value with an explicit ONNX attribute type. */
export interface TypedAttr {
  readonly kind: 'float' | 'floats' | 'tensor';
  readonly value: number | readonly number[] | InstanceType<Onnx['TensorProto']>;
}
export type AttrValue = number | bigint | string | readonly number[] | readonly string[] | TypedAttr;

export const attr = {
  float: (value: number): TypedAttr => ({ kind: 'float', value }),
  floats: (value: readonly number[]): TypedAttr => ({ kind: 'floats', value }),
  /** A tensor attribute (e.g. ConstantOfShape `value`, Constant `value`). */
  tensor: (data: InitData, dims: readonly number[], dtype: DType = dtypeOf(data)): TypedAttr => {
    checkDims(dims, data.length, 'tensor attribute');
    return { kind: 'tensor', value: onnx.TensorProto.create({ dims: [...dims], dataType: DTYPE_CODE[dtype], rawData: rawBytes(data) }) };
  },
};

export interface SerializeOptions {
  /** Default opset of the ai.onnx domain; 17 unless told. */
  opset?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Stored as model metadata_props (string key/values), readable from ORT session metadata tools. */
  metadata?: Record<string, string>;
}

function rawBytes(data: InitData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function checkDims(dims: readonly number[], size: number, what: string): void {
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`${what}: invalid dimension ${d} in [${dims.join(', ')}]`);
    n *= d;
  }
  if (n !== size) throw new RangeError(`${what}: dims [${dims.join(', ')}] hold ${n} values, data has ${size}`);
}

export class GraphBuilder {
  readonly name: string;
  #nodes: InstanceType<Onnx['NodeProto']>[] = [];
  #initializers: InstanceType<Onnx['TensorProto']>[] = [];
  #inputs: InstanceType<Onnx['ValueInfoProto']>[] = [];
  #outputs: InstanceType<Onnx['ValueInfoProto']>[] = [];
  #names = new Set<string>();
  #counter = 0;

  constructor(name = 'graph') {
    if (endianness() !== 'LE') throw new Error('GraphBuilder: raw tensor data assumes a little-endian host');
    this.name = name;
  }

  /** A value name starting with `prefix`, never returned before and not yet used by any declared value. */
  fresh(prefix = 't'): string {
    let name: string;
    do name = `${prefix}_${this.#counter++}`; while (this.#names.has(name));
    return name;
  }

  #claim(name: string): string {
    if (this.#names.has(name)) throw new Error(`GraphBuilder: value name "${name}" is already used`);
    this.#names.add(name);
    return name;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, dtype: DType, shape: readonly Dim[]): string {
    this.#inputs.push(valueInfo(this.#claim(name), dtype, shape));
    return name;
  }

  /**
   * Declares `value` as a graph output. When `name` differs from `value`, an Identity node renames it
   * (ONNX outputs are values; this keeps callers free to compute outputs under generated names).
   */
  output(value: string, dtype: DType, shape: readonly Dim[], name = value): string {
    if (name !== value) this.node('Identity', [value], [this.#claim(name)]);
    this.#outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /** A constant tensor stored in the model (raw little-endian bytes). Returns its name. */
  initializer(name: string, data: InitData, dims: readonly number[], dtype: DType = dtypeOf(data)): string {
    checkDims(dims, data.length, `initializer ${name}`);
    this.#initializers.push(onnx.TensorProto.create({
      name: this.#claim(name), dims: [...dims], dataType: DTYPE_CODE[dtype], rawData: rawBytes(data),
    }));
    return name;
  }

  /** A constant under a generated name: shorthand for small shape/axes/scalar tensors. */
  constant(data: InitData, dims: readonly number[], prefix = 'const'): string {
    return this.initializer(this.fresh(prefix), data, dims);
  }

  /** An int64 constant (shapes, axes, k), 1-D unless `dims` is given (`[]` for a scalar). */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant(BigInt64Array.from(values, (v) => BigInt(v)), dims, 'i64');
  }

  /** A float32 constant, 1-D unless `dims` is given (`[]` for a scalar). */
  float32(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant(Float32Array.from(values), dims, 'f32');
  }

  /**
   * Adds a node. `outputs` is a list of names, or a count of outputs to be named freshly. Returns the output
   * names. An empty-string input marks an omitted optional input, as in ONNX.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1,
    attrs: Record<string, AttrValue> = {}, options: { domain?: string; name?: string } = {}): string[] {
    const outNames = typeof outputs === 'number'
      ? Array.from({ length: outputs }, () => this.#claim(this.fresh(opType.toLowerCase())))
      : outputs.map((o) => (this.#names.has(o) ? o : this.#claim(o)));
    this.#nodes.push(onnx.NodeProto.create({
      opType,
      domain: options.domain ?? '',
      name: options.name ?? `${opType}_${this.#nodes.length}`,
      input: [...inputs],
      output: outNames,
      attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    }));
    return outNames;
  }

  /** Adds a single-output node and returns its output name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, 1, attrs)[0]!;
  }

  /**
   * Appends another graph's initializers, inputs and nodes (a model merged from serialized parts). Every value and
   * node name goes through `rename` ('' stays '': an omitted optional input). An input whose renamed name is already
   * declared here is shared, not declared again. With `dedupe`, an initializer equal (type, dims, bytes) to one
   * already here is dropped and its uses read the existing one, so ORT's common-subexpression pass can share the
   * work the two graphs have in common. Graphs with subgraph attributes (If, Loop) are refused.
   */
  adopt(graph: onnxProto.onnx.IGraphProto, rename: (name: string) => string, options: { dedupe?: boolean } = {}): void {
    const map = new Map<string, string>();
    const nameOf = (n?: string | null) => (n ? map.get(n) ?? rename(n) : '');
    for (const init of graph.initializer ?? []) {
      const same = options.dedupe ? this.#initializers.find((t) => sameTensor(t, init)) : undefined;
      if (same) map.set(init.name!, same.name);
      else this.#initializers.push(onnx.TensorProto.create({ ...init, name: this.#claim(nameOf(init.name)) }));
    }
    for (const input of graph.input ?? []) {
      const name = nameOf(input.name);
      if (!this.#names.has(name)) this.#inputs.push(onnx.ValueInfoProto.create({ ...input, name: this.#claim(name) }));
    }
    for (const node of graph.node ?? []) {
      if (node.attribute?.some((x) => x.g || (x.graphs?.length ?? 0) > 0)) throw new Error(`GraphBuilder.adopt: node ${node.name} has a subgraph`);
      this.#nodes.push(onnx.NodeProto.create({
        ...node, name: rename(node.name ?? ''), input: (node.input ?? []).map(nameOf),
        output: (node.output ?? []).map((o) => this.#claim(nameOf(o))),
      }));
    }
  }

  /** Drops the nodes no declared output depends on, then the initializers nothing reads (inputs too, when asked). */
  prune(options: { inputs?: boolean } = {}): void {
    const needed = new Set(this.#outputs.map((o) => o.name));
    const keep = new Array<boolean>(this.#nodes.length).fill(false);
    for (let i = this.#nodes.length - 1; i >= 0; i--) { // nodes are in topological order
      const node = this.#nodes[i]!;
      if (!node.output.some((o) => needed.has(o))) continue;
      keep[i] = true;
      for (const input of node.input) needed.add(input);
    }
    this.#nodes = this.#nodes.filter((_, i) => keep[i]);
    this.#initializers = this.#initializers.filter((t) => needed.has(t.name));
    if (options.inputs) this.#inputs = this.#inputs.filter((i) => needed.has(i.name));
  }

  get nodeCount(): number {
    return this.#nodes.length;
  }

  toGraph(): InstanceType<Onnx['GraphProto']> {
    return onnx.GraphProto.create({
      name: this.name, node: this.#nodes, initializer: this.#initializers, input: this.#inputs, output: this.#outputs,
    });
  }

  toModel(options: SerializeOptions = {}): InstanceType<Onnx['ModelProto']> {
    return onnx.ModelProto.create({
      irVersion: onnx.Version.IR_VERSION,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: options.opset ?? 17 })],
      producerName: options.producerName ?? 'sidx',
      producerVersion: options.producerVersion ?? '',
      docString: options.docString ?? '',
      graph: this.toGraph(),
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) =>
        onnx.StringStringEntryProto.create({ key, value })),
    });
  }

  /** The serialized ModelProto. */
  serialize(options: SerializeOptions = {}): Uint8Array {
    return onnx.ModelProto.encode(this.toModel(options)).finish();
  }
}

/** Whether two initializers hold the same raw-data tensor (type, dims and bytes). */
function sameTensor(a: onnxProto.onnx.ITensorProto, b: onnxProto.onnx.ITensorProto): boolean {
  const bytes = (t: onnxProto.onnx.ITensorProto) => (t.rawData ? Buffer.from(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength) : undefined);
  const [x, y] = [bytes(a), bytes(b)];
  return x !== undefined && y !== undefined && x.length > 0 && a.dataType === b.dataType
    && (a.dims ?? []).join() === (b.dims ?? []).join() && x.equals(y) && !a.externalData?.length && !b.externalData?.length;
}

function valueInfo(name: string, dtype: DType, shape: readonly Dim[]): InstanceType<Onnx['ValueInfoProto']> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DTYPE_CODE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function toAttribute(name: string, v: AttrValue): InstanceType<Onnx['AttributeProto']> {
  const T = onnx.AttributeProto.AttributeType;
  const create = onnx.AttributeProto.create.bind(onnx.AttributeProto);
  if (typeof v === 'bigint') return create({ name, type: T.INT, i: Number(v) });
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`attribute ${name}=${v}: use attr.float() for float attributes`);
    return create({ name, type: T.INT, i: v });
  }
  if (typeof v === 'string') return create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) {
      return create({ name, type: T.STRINGS, strings: (v as string[]).map((s) => new TextEncoder().encode(s)) });
    }
    if (!v.every((x) => Number.isInteger(x))) throw new TypeError(`attribute ${name}: use attr.floats() for floats`);
    return create({ name, type: T.INTS, ints: [...(v as number[])] });
  }
  const t = v as TypedAttr;
  if (t.kind === 'float') return create({ name, type: T.FLOAT, f: t.value as number });
  if (t.kind === 'floats') return create({ name, type: T.FLOATS, floats: [...(t.value as number[])] });
  return create({ name, type: T.TENSOR, t: t.value as InstanceType<Onnx['TensorProto']> });
}
