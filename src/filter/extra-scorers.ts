import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { float32ToFloat16 } from './float16.js';
import { floatValues, openSession, tensorMeta, type ExecutionProviderChoice } from './sessions.js';
import type { SessionLike } from './remote-session.js';

/** A user-supplied classifier head on the image embedding (e.g. LAION's watermark or safety detector). */
export interface ExtraScorerSpec {
  /** Column name in the output (verdict.extra[name]). */
  name: string;
  /** ONNX model: input the L2-normalised image embedding `[n, dim]`, first output one score per row. */
  modelPath: string;
  /** Rows scoring above this are dropped (high = watermarked / unsafe, as LAION's detectors score). */
  threshold?: number;
}

/** One loaded scorer head. */
export class ExtraScorer {
  private constructor(
    readonly spec: ExtraScorerSpec,
    private readonly session: SessionLike,
    private readonly inputName: string,
    private readonly inputType: 'float32' | 'float16',
    private readonly outputName: string,
  ) {}

  static async open(spec: ExtraScorerSpec, choice: ExecutionProviderChoice, warn: (msg: string) => void): Promise<ExtraScorer> {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(spec.name)) {
      throw new Error(`extra scorer name "${spec.name}" must be a column name (letters, digits, _)`);
    }
    const { session } = await openSession(spec.modelPath, choice, warn);
    const model = basename(spec.modelPath);
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];
    if (!inputName || !outputName) throw new Error(`${model}: a scorer needs one input and one output`);
    const input = tensorMeta(session.inputMetadata, inputName, model);
    if (input.type !== 'float32' && input.type !== 'float16') throw new Error(`${model}: input ${inputName} is ${input.type}, expected float`);
    return new ExtraScorer(spec, session, inputName, input.type, outputName);
  }

  /** One score per row of the normalised image embeddings. */
  async score(embeddings: Float32Array, rows: number, dim: number): Promise<number[]> {
    const data = this.inputType === 'float32' ? embeddings : float32ToFloat16(embeddings);
    const result = await this.session.run({ [this.inputName]: new ort.Tensor(this.inputType, data, [rows, dim]) });
    const values = floatValues(result[this.outputName]!);
    if (values.length % rows !== 0 || values.length === 0) {
      throw new Error(`${this.spec.name}: scorer returned ${values.length} values for ${rows} rows`);
    }
    // A head with several outputs per row (e.g. [p_clean, p_watermark]) reports its last column.
    const stride = values.length / rows;
    return Array.from({ length: rows }, (_, r) => values[r * stride + stride - 1]!);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
