// A small builder over the ONNX protobuf classes of `onnx-proto` (protobufjs): nodes, typed
// inputs/outputs, small inline constants, and large initializers stored as ONNX external data.
import onnxProto from 'onnx-proto';
import type { ExternalDataWriter } from './external-data.js';
import { float32ToFloat16 } from '../model/float-formats.js';

const { onnx } = onnxProto;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
type ValueInfoProto = InstanceType<typeof onnx.ValueInfoProto>;
type AttributeProto = InstanceType<typeof onnx.AttributeProto>;

export const DataType = onnx.TensorProto.DataType;
export type ElemType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool' | 'int8';

const elemTypeCode: Record<ElemType, number> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  bool: DataType.BOOL,
  int8: DataType.INT8,
};

/**
 * A MatMul right operand stored quantized: `MatMul(x, name)` becomes
 * com.microsoft DynamicQuantizeMatMul(x, weight, scale) (x quantized per run, per tensor).
 */
export interface QuantizedOperand {
  /** int8 [in, out]. */
  weight: string;
  /** float32 [out]: one scale per output channel (column). */
  scale: string;
  /** float32 [out]: `Add(MatMul(x, name), bias)` right after becomes the op's own bias input. */
  bias?: string;
  /** Input features kept in float32: x·mask goes through int8, Gather(x, indices)·weight beside it. */
  outliers?: { indices: string; weight: string; mask: string };
}

/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

/** Tensor data kept in memory: Float32 for float32, raw IEEE halves (Uint16) for float16. */
export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Int8Array;

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private counter = 0;
  /** Small constants are shared: one initializer per distinct (type, dims, values). */
  private readonly constants = new Map<string, string>();
  /** MatMul operands that are quantized weights (see QuantizedOperand), by the name the graph code uses. */
  private readonly quantized = new Map<string, QuantizedOperand>();
  /** DynamicQuantizeMatMul nodes without a bias yet, by output name, with the bias they may take. */
  private readonly biasable = new Map<string, { node: NodeProto; bias: string }>();

  constructor(private readonly externalData: ExternalDataWriter | null) {}

  /** A fresh tensor name with a readable prefix (e.g. "layer3/attn/q"). */
  name(prefix: string): string {
    let candidate = prefix;
    while (this.usedNames.has(candidate)) candidate = `${prefix}_${++this.counter}`;
    this.usedNames.add(candidate);
    return candidate;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.usedNames.add(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares `tensor` as a graph output named `name` (through an Identity when renamed). */
  output(tensor: string, name: string, type: ElemType, dims: Dim[]): void {
    if (tensor !== name) this.node('Identity', [tensor], { outputs: [name] });
    this.outputs.push(valueInfo(name, type, dims));
  }

  /**
   * Appends a node; returns its first output's name. `outputs` may name outputs explicitly,
   * otherwise one output is named after `prefix` (or the op type).
   */
  node(
    opType: string,
    inputs: string[],
    opts: { attrs?: Record<string, AttrValue>; outputs?: string[]; prefix?: string; domain?: string } = {},
  ): string {
    const q = opType === 'MatMul' && inputs.length === 2 ? this.quantized.get(inputs[1]) : undefined;
    if (q) {
      const o = q.outliers;
      const a = o ? this.node('Mul', [inputs[0], o.mask], { prefix: `${opts.prefix ?? 'matmul'}/int8_features` }) : inputs[0];
      const quantized = this.node('DynamicQuantizeMatMul', [a, q.weight, q.scale], { ...(o ? { prefix: opts.prefix } : opts), domain: 'com.microsoft' });
      const node = this.nodes[this.nodes.length - 1];
      const out = o
        ? this.node('Add', [quantized, this.node('MatMul', [this.node('Gather', [inputs[0], o.indices], { attrs: { axis: -1 } }), o.weight])], opts)
        : quantized;
      if (q.bias) this.biasable.set(out, { node, bias: q.bias });
      return out;
    }
    const pending = opType === 'Add' && inputs.length === 2 && !opts.outputs ? this.biasable.get(inputs[0]) : undefined;
    if (pending && pending.bias === inputs[1]) {
      // The bias add of a quantized Linear: one pass over the output fewer (b_zero_point empty).
      this.biasable.delete(inputs[0]);
      pending.node.input.push('', inputs[1]);
      return inputs[0];
    }
    const outputs = opts.outputs ?? [this.name(opts.prefix ?? opType.toLowerCase())];
    for (const out of outputs) this.usedNames.add(out);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        domain: opts.domain ?? '',
        name: this.name(`node/${outputs[0]}`),
        input: inputs,
        output: outputs,
        attribute: Object.entries(opts.attrs ?? {}).map(([key, value]) => attribute(key, value)),
      }),
    );
    return outputs[0];
  }

  /** Every output of a multi-output node. */
  nodeMulti(opType: string, inputs: string[], count: number, opts: { attrs?: Record<string, AttrValue>; prefix?: string; domain?: string } = {}): string[] {
    const outputs = Array.from({ length: count }, (_, i) => this.name(`${opts.prefix ?? opType.toLowerCase()}_${i}`));
    this.node(opType, inputs, { ...opts, outputs });
    return outputs;
  }

  /** A small tensor stored inline in the graph (shapes, scalars, axes). */
  constant(prefix: string, type: ElemType, dims: number[], values: number[]): string {
    const key = `${type}|${dims.join(',')}|${values.join(',')}`;
    const existing = this.constants.get(key);
    if (existing) return existing;
    const name = this.name(prefix);
    this.initializers.push(inlineTensor(name, type, dims, values));
    this.constants.set(key, name);
    return name;
  }

  scalar(value: number, type: ElemType = 'float32'): string {
    return this.constant(`const_${type}_${String(value).replace(/[^0-9a-z]/gi, '_')}`, type, [], [value]);
  }

  ints(values: number[]): string {
    return this.constant(`const_i64_${values.join('_').replace(/-/g, 'm')}`, 'int64', [values.length], values);
  }

  /**
   * A name for a quantized MatMul operand: every `node('MatMul', [x, name])` emits
   * DynamicQuantizeMatMul instead, so graph code written for float weights needs no change.
   */
  quantizedOperand(name: string, operand: QuantizedOperand): string {
    const tensorName = this.name(name);
    this.quantized.set(tensorName, operand);
    return tensorName;
  }

  /** A weight: written to the external data file when there is one, else inline. */
  weight(name: string, type: 'float32' | 'float16' | 'int8', dims: number[], data: Float32Array | Uint16Array | Int8Array): string {
    const tensorName = this.name(name);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const tensor = onnx.TensorProto.create({ name: tensorName, dataType: elemTypeCode[type], dims });
    if (this.externalData) {
      const { offset, length } = this.externalData.append(bytes);
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        { key: 'location', value: this.externalData.fileName },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ];
    } else {
      tensor.rawData = bytes;
    }
    this.initializers.push(tensor);
    return tensorName;
  }

  encode(opts: { graphName: string; opsets: Record<string, number>; metadata: Record<string, string>; docString?: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'esm2-serve',
      docString: opts.docString ?? '',
      opsetImport: Object.entries(opts.opsets).map(([domain, version]) => ({ domain, version })),
      metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
      graph: onnx.GraphProto.create({
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: elemTypeCode[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function inlineTensor(name: string, type: ElemType, dims: number[], values: number[]): TensorProto {
  let data: TensorData | Uint8Array;
  switch (type) {
    case 'float32': data = Float32Array.from(values); break;
    case 'float16': data = float32ToFloat16(Float32Array.from(values)); break;
    case 'int64': data = BigInt64Array.from(values, (v) => BigInt(v)); break;
    case 'int32': data = Int32Array.from(values); break;
    case 'bool': data = Uint8Array.from(values, (v) => (v ? 1 : 0)); break;
    case 'int8': data = Int8Array.from(values); break;
  }
  return onnx.TensorProto.create({
    name,
    dataType: elemTypeCode[type],
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function attribute(name: string, value: AttrValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: value });
  }
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: value });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: value.float });
  return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: value.floats });
}
