import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { PixelDType } from './image-preprocess.js';
import { floatValues, openSession, tensorMeta, type ExecutionProviderChoice, type ProviderName } from './sessions.js';
import type { SessionLike } from './remote-session.js';
import type { EncodedBatch } from './tokenizer.js';

/** Picks `preferred` when the model has it, else its only/first name: real exports differ slightly. */
function pick(names: readonly string[], preferred: string, model: string, what: string): string {
  if (names.includes(preferred)) return preferred;
  if (names.length === 0) throw new Error(`${model} has no ${what}`);
  return names[0]!;
}

function staticDim(shape: ReadonlyArray<number | string>, axis: number): number | null {
  const d = shape[axis];
  return typeof d === 'number' && d > 0 ? d : null;
}

/** The image tower: `pixel_values` `[n, 3, H, W]` → `image_embeds` `[n, dim]`. */
export class VisionEncoder {
  private constructor(
    private readonly session: SessionLike,
    readonly provider: ProviderName,
    readonly inputName: string,
    readonly outputName: string,
    readonly dtype: PixelDType,
    readonly dim: number | null,
  ) {}

  static async open(path: string, choice: ExecutionProviderChoice, warn: (msg: string) => void): Promise<VisionEncoder> {
    const { session, provider } = await openSession(path, choice, warn);
    const model = basename(path);
    const inputName = pick(session.inputNames, 'pixel_values', model, 'inputs');
    const outputName = pick(session.outputNames, 'image_embeds', model, 'outputs');
    const input = tensorMeta(session.inputMetadata, inputName, model);
    if (input.type !== 'float32' && input.type !== 'float16') throw new Error(`${model}: ${inputName} is ${input.type}, expected float`);
    const output = tensorMeta(session.outputMetadata, outputName, model);
    return new VisionEncoder(session, provider, inputName, outputName, input.type, staticDim(output.shape, 1));
  }

  /** Raw (not normalised) embeddings of `count` preprocessed images. */
  async embed(pixels: Float32Array | Uint16Array, count: number, height: number, width: number): Promise<Float32Array> {
    const tensor = new ort.Tensor(this.dtype, pixels, [count, 3, height, width]);
    const result = await this.session.run({ [this.inputName]: tensor });
    return floatValues(result[this.outputName]!);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** The text tower: `input_ids` (+ `attention_mask`) `[n, L]` → `text_embeds` `[n, dim]`. */
export class TextEncoder {
  private constructor(
    private readonly session: SessionLike,
    readonly provider: ProviderName,
    private readonly idsName: string,
    private readonly maskName: string | null,
    private readonly idType: 'int64' | 'int32',
    readonly outputName: string,
    /** The context length the model fixes, when its input shape says so. */
    readonly contextLength: number | null,
    readonly dim: number | null,
  ) {}

  static async open(path: string, choice: ExecutionProviderChoice, warn: (msg: string) => void): Promise<TextEncoder> {
    const { session, provider } = await openSession(path, choice, warn);
    const model = basename(path);
    const idsName = pick(session.inputNames, 'input_ids', model, 'inputs');
    const maskName = session.inputNames.includes('attention_mask') ? 'attention_mask' : null;
    const ids = tensorMeta(session.inputMetadata, idsName, model);
    if (ids.type !== 'int64' && ids.type !== 'int32') throw new Error(`${model}: ${idsName} is ${ids.type}, expected int64`);
    const outputName = pick(session.outputNames, 'text_embeds', model, 'outputs');
    const output = tensorMeta(session.outputMetadata, outputName, model);
    return new TextEncoder(session, provider, idsName, maskName, ids.type, outputName, staticDim(ids.shape, 1), staticDim(output.shape, 1));
  }

  /** Raw (not normalised) embeddings of an encoded batch. */
  async embed(batch: EncodedBatch, count: number): Promise<Float32Array> {
    const dims = [count, batch.contextLength];
    const asType = (values: BigInt64Array): ort.Tensor =>
      this.idType === 'int64' ? new ort.Tensor('int64', values, dims) : new ort.Tensor('int32', Int32Array.from(values, Number), dims);
    const feeds: Record<string, ort.Tensor> = { [this.idsName]: asType(batch.inputIds) };
    if (this.maskName) feeds[this.maskName] = asType(batch.attentionMask);
    const result = await this.session.run(feeds);
    return floatValues(result[this.outputName]!);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Scales each `dim`-long row to unit length in place (zero rows stay zero). */
export function normalizeRows(values: Float32Array, dim: number): Float32Array {
  for (let row = 0; row * dim < values.length; row++) {
    let sum = 0;
    for (let i = row * dim; i < (row + 1) * dim; i++) sum += values[i]! * values[i]!;
    const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let i = row * dim; i < (row + 1) * dim; i++) values[i]! *= scale;
  }
  return values;
}

/** Dot products of matching rows: the cosine similarity once both sides are normalised. */
export function rowDots(a: Float32Array, b: Float32Array, dim: number): number[] {
  const out: number[] = [];
  for (let row = 0; row * dim < a.length; row++) {
    let dot = 0;
    for (let i = row * dim; i < (row + 1) * dim; i++) dot += a[i]! * b[i]!;
    out.push(dot);
  }
  return out;
}
