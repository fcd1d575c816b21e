/**
 * A small builder for ONNX graphs (opset 17), written against onnx-proto's generated types.
 * The model-specific graphs (BERT, hyperhead, q-net scorer) are written with it.
 *
 * Large initializers go to ONNX external data (see ./save.ts), because a protobuf is capped at 2 GB.
 */
// onnx-proto is CommonJS without static named exports, so take the namespace off the default export.
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";

const { onnx } = onnxProto;

export const OPSET_VERSION = 17;
export const IR_VERSION = 8;

export const ElemType = {
  float: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
} as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

/** A dimension: a fixed size or a symbolic name such as "batch". */
export type Dim = number | string;

export type InitializerData = Float32Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array;

export interface Initializer {
  name: string;
  elemType: ElemType;
  dims: number[];
  data: InitializerData;
}

export type AttributeValue = number | number[] | string | { int: number } | { ints: number[] };

/** Builds one graph. Every method returns the name of the value it produced. */
export class GraphBuilder {
  readonly nodes: Onnx.INodeProto[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: Onnx.IValueInfoProto[] = [];
  readonly outputs: Onnx.IValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();

  constructor(readonly name: string) {}

  /** A fresh value name derived from `hint`. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.usedNames.has(name); i++) name = `${hint}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares `value` as a graph output named `name` (adds an Identity when the names differ). */
  output(value: string, name: string, elemType: ElemType, dims: Dim[]): string {
    if (value !== name) {
      this.claim(name);
      this.nodes.push({ opType: "Identity", input: [value], output: [name], name: `out_${name}` });
    }
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  initializer(hint: string, data: InitializerData, dims: number[], elemType: ElemType = elemTypeOf(data)): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new Error(`initializer ${hint}: ${data.length} values for shape [${dims.join(",")}]`);
    }
    const name = this.fresh(hint);
    this.initializers.push({ name, elemType, dims, data });
    return name;
  }

  /** A float32 constant (scalar when dims is []). */
  floats(hint: string, values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.initializer(hint, Float32Array.from(values), dims);
  }

  /** An int64 constant, e.g. a shape or axes list. */
  int64s(hint: string, values: number[], dims: number[] = [values.length]): string {
    return this.initializer(hint, BigInt64Array.from(values.map(BigInt)), dims);
  }

  /** Adds a node with a single output. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, hint = opType): string {
    return this.opN(opType, inputs, 1, attributes, hint)[0]!;
  }

  /** Adds a node with `outputCount` outputs. */
  opN(
    opType: string,
    inputs: string[],
    outputCount: number,
    attributes: Record<string, AttributeValue> = {},
    hint = opType,
  ): string[] {
    const outputs = Array.from({ length: outputCount }, (_, i) => this.fresh(outputCount === 1 ? hint : `${hint}_o${i}`));
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: this.fresh(`n_${hint}`),
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  // Common ops -----------------------------------------------------------------------------

  add(a: string, b: string, hint = "add"): string {
    return this.op("Add", [a, b], {}, hint);
  }
  mul(a: string, b: string, hint = "mul"): string {
    return this.op("Mul", [a, b], {}, hint);
  }
  matmul(a: string, b: string, hint = "matmul"): string {
    return this.op("MatMul", [a, b], {}, hint);
  }

  /**
   * torch.nn.Linear: x·Wᵀ + b with W in torch layout [out, in]. The transpose is done once,
   * here, so the graph holds an [in, out] initializer and does a plain MatMul.
   */
  linear(x: string, weight: { shape: number[]; data: Float32Array }, bias: { data: Float32Array } | undefined, hint: string): string {
    const [out, inp] = weight.shape as [number, number];
    const w = this.initializer(`${hint}.weight_t`, transpose2d(weight.data, out, inp), [inp, out]);
    const y = this.matmul(x, w, `${hint}.matmul`);
    if (!bias) return y;
    return this.add(y, this.initializer(`${hint}.bias`, bias.data, [out]), `${hint}.out`);
  }

  /** LayerNormalization over the last axis; without scale/bias when they are omitted. */
  layerNorm(x: string, width: number, eps: number, scale?: Float32Array, bias?: Float32Array, hint = "ln"): string {
    const s = this.initializer(`${hint}.scale`, scale ?? new Float32Array(width).fill(1), [width]);
    const b = this.initializer(`${hint}.bias`, bias ?? new Float32Array(width), [width]);
    return this.op("LayerNormalization", [x, s, b], { axis: { int: -1 }, epsilon: eps }, hint);
  }

  /**
   * Exact GELU, 0.5·x·(1 + erf(x/√2)), as torch.nn.GELU() and HF BERT's "gelu". Written as
   * (x·0.5)·(1 + erf(x / √2)), the exact node pattern onnxruntime's GeluFusion turns into one Gelu
   * kernel (it requires Div by √2 and the 0.5 Mul on x; Mul by 1/√2 or a trailing 0.5 is not fused).
   */
  gelu(x: string, hint = "gelu"): string {
    const scaled = this.op("Div", [x, this.floats(`${hint}.sqrt2`, [Math.SQRT2], [])], {}, `${hint}.scaled`);
    const erf = this.op("Erf", [scaled], {}, `${hint}.erf`);
    const onePlus = this.add(erf, this.floats(`${hint}.one`, [1], []), `${hint}.one_plus`);
    return this.mul(this.mul(x, this.floats(`${hint}.half`, [0.5], []), `${hint}.half_x`), onePlus, hint);
  }

  reshape(x: string, shape: number[], hint = "reshape"): string {
    return this.op("Reshape", [x, this.int64s(`${hint}.shape`, shape)], {}, hint);
  }

  transpose(x: string, perm: number[], hint = "transpose"): string {
    return this.op("Transpose", [x], { perm: { ints: perm } }, hint);
  }

  cast(x: string, to: ElemType, hint = "cast"): string {
    return this.op("Cast", [x], { to: { int: to } }, hint);
  }

  /** Unsqueeze; since opset 13 the axes are an input, not an attribute. */
  unsqueeze(x: string, axes: number[], hint = "unsqueeze"): string {
    return this.op("Unsqueeze", [x, this.int64s(`${hint}.axes`, axes)], {}, hint);
  }

  /** Squeeze; since opset 13 the axes are an input, not an attribute. */
  squeeze(x: string, axes: number[], hint = "squeeze"): string {
    return this.op("Squeeze", [x, this.int64s(`${hint}.axes`, axes)], {}, hint);
  }

  /** Splits `x` along `axis` into pieces of the given sizes (one output per size). */
  split(x: string, sizes: number[], axis: number, hint = "split"): string[] {
    if (sizes.length === 1) return [x];
    return this.opN("Split", [x, this.int64s(`${hint}.sizes`, sizes)], sizes.length, { axis: { int: axis } }, hint);
  }

  sub(a: string, b: string, hint = "sub"): string {
    return this.op("Sub", [a, b], {}, hint);
  }
  div(a: string, b: string, hint = "div"): string {
    return this.op("Div", [a, b], {}, hint);
  }

  /** Sums over `axes` (opset 13+ takes the axes as an input). */
  reduceSum(x: string, axes: number[], keepDims: boolean, hint = "reduce_sum"): string {
    return this.op("ReduceSum", [x, this.int64s(`${hint}.axes`, axes)], { keepdims: { int: keepDims ? 1 : 0 } }, hint);
  }

  toGraphProto(initializerTensors: Onnx.ITensorProto[]): Onnx.IGraphProto {
    return {
      name: this.name,
      node: this.nodes,
      initializer: initializerTensors,
      input: this.inputs,
      output: this.outputs,
    };
  }

  private claim(name: string): void {
    if (this.usedNames.has(name)) throw new Error(`duplicate value name ${name}`);
    this.usedNames.add(name);
  }
}

export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  }
  return out;
}

function elemTypeOf(data: InitializerData): ElemType {
  if (data instanceof Float32Array) return ElemType.float;
  if (data instanceof BigInt64Array) return ElemType.int64;
  if (data instanceof Int32Array) return ElemType.int32;
  if (data instanceof Uint16Array) return ElemType.float16;
  return ElemType.bool;
}

function valueInfo(name: string, elemType: ElemType, dims: Dim[]): Onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): Onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === "string") return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === "number") return { name, type: T.FLOAT, f: value };
  if (Array.isArray(value)) return { name, type: T.FLOATS, floats: value };
  if ("int" in value) return { name, type: T.INT, i: value.int };
  return { name, type: T.INTS, ints: value.ints };
}

/**
 * The whole model as ONNX protobuf bytes, every initializer inline. Only for graphs far below
 * protobuf's 2 GB cap (tests, the q-net scorer); ./save.ts writes large ones with external data.
 */
export function encodeModel(graph: GraphBuilder): Uint8Array {
  return encodeModelWith(graph, graph.initializers.map(inlineTensor));
}

/** Serialises the model around `initializerTensors`, the graph's initializers as TensorProtos. */
export function encodeModelWith(graph: GraphBuilder, initializerTensors: Onnx.ITensorProto[]): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: "hypencoder-search",
    opsetImport: [{ domain: "", version: OPSET_VERSION }],
    graph: graph.toGraphProto(initializerTensors),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** An initializer's name, type and shape, without its data. */
export function tensorHeader(init: Initializer): Onnx.ITensorProto {
  return { name: init.name, dataType: init.elemType, dims: init.dims };
}

/** An initializer with its data inline. */
export function inlineTensor(init: Initializer): Onnx.ITensorProto {
  return { ...tensorHeader(init), rawData: initializerBytes(init) };
}

/** ONNX raw data is little-endian, which is every platform we run on. */
export function initializerBytes(init: Initializer): Uint8Array {
  return new Uint8Array(init.data.buffer, init.data.byteOffset, init.data.byteLength);
}
