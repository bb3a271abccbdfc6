import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX element types used here (TensorProto.DataType). */
export const DType = { float: 1, int32: 6, int64: 7, bool: 9, float16: 10 } as const;
export type DTypeName = keyof typeof DType;

/** Opset 17: LayerNormalization is a standard op from there on (IR version 8 carries it). */
const OPSET = 17;
const IR_VERSION = 8;
/** Initializers above this size go to the external data file when one is used. */
const EXTERNAL_MIN_BYTES = 1024;
const EXTERNAL_ALIGN = 4096;

export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array;

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'string'; value: string };

export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
};

interface PendingInitializer {
  name: string;
  dims: number[];
  dtype: DTypeName;
  /** Data now, or a generator run at write time so that huge weights never all sit in memory. */
  data: TensorData | (() => TensorData);
}

/** A small builder over the ONNX protobuf schema: named values, nodes, initializers. */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: PendingInitializer[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, dtype: DTypeName, shape: (number | string)[]): string {
    this.inputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  output(name: string, dtype: DTypeName, shape: (number | string)[]): string {
    this.outputs.push(valueInfo(name, dtype, shape));
    return name;
  }

  /** A weight or constant; returns its name. */
  init(name: string, dims: number[], dtype: DTypeName, data: TensorData | (() => TensorData)): string {
    this.initializers.push({ name, dims, dtype, data });
    return name;
  }

  /** A float32 constant with an automatic name. */
  constFloat(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.init(this.fresh('const'), dims, 'float', Float32Array.from(values));
  }

  /** An int64 constant (shapes, axes, indices) with an automatic name. */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    return this.init(this.fresh('const'), dims, 'int64', BigInt64Array.from(values.map(BigInt)));
  }

  /** Adds a node and returns its single output's name (`out` or a fresh one). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    const output = out ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      name: this.fresh(`n_${opType}`),
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([name, a]) => attributeProto(name, a)),
    });
    return output;
  }

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /**
   * Writes the model. With `externalData`, large initializers go to that file beside the model
   * (ONNX external data), which keeps huge models under protobuf's 2 GB limit and out of memory.
   */
  async write(path: string, opts: { externalData?: string; producer?: string } = {}): Promise<void> {
    const tensors: onnxProto.onnx.ITensorProto[] = [];
    const dataFile = opts.externalData ? await open(opts.externalData, 'w') : null;
    try {
      let offset = 0;
      for (const init of this.initializers) {
        const data = typeof init.data === 'function' ? init.data() : init.data;
        const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        const tensor: onnxProto.onnx.ITensorProto = { name: init.name, dims: init.dims, dataType: DType[init.dtype] };
        if (dataFile && bytes.byteLength >= EXTERNAL_MIN_BYTES) {
          offset = Math.ceil(offset / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
          await dataFile.write(bytes, 0, bytes.byteLength, offset);
          tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
          tensor.externalData = [
            { key: 'location', value: basename(opts.externalData!) },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(bytes.byteLength) },
          ];
          offset += bytes.byteLength;
        } else {
          tensor.rawData = bytes.slice();
        }
        tensors.push(tensor);
      }
    } finally {
      await dataFile?.close();
    }
    const model: onnxProto.onnx.IModelProto = {
      irVersion: IR_VERSION,
      producerName: opts.producer ?? 'cah',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: tensors,
      },
    };
    const file = await open(path, 'w');
    try {
      await file.write(onnx.ModelProto.encode(model).finish());
    } finally {
      await file.close();
    }
  }
}

function valueInfo(name: string, dtype: DTypeName, shape: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DType[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeProto(name: string, a: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}
