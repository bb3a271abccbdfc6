import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fromFloat16Bits } from './float16.js';
import { RemoteSession, type SessionLike } from './remote-session.js';

export type ExecutionProviderChoice = 'auto' | 'cpu' | 'cuda';
export type ProviderName = 'CUDA' | 'CPU';

export interface OpenedSession {
  session: SessionLike;
  provider: ProviderName;
}

/**
 * ONNX Runtime's own log lines stay quiet: failures arrive as exceptions, and cah itself says which
 * provider runs (otherwise a CPU-only machine prints a red "cannot load CUDA library" on every start).
 */
const QUIET = 4;
ort.env.logLevel = 'fatal';

/**
 * Whether this onnxruntime-node install has its CUDA provider (installed with
 * ONNXRUNTIME_NODE_INSTALL=cuda12; the npm package alone is the CPU build).
 */
export function cudaProviderInstalled(): boolean {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  const bin = join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return ['libonnxruntime_providers_cuda.so', 'onnxruntime_providers_cuda.dll'].some((f) => existsSync(join(bin, f)));
}

/** `auto` means CUDA only where the CUDA provider is installed: a CPU install runs on CPU without a warning. */
export function resolveProviderChoice(choice: ExecutionProviderChoice): 'cpu' | 'cuda' {
  if (choice === 'auto') return cudaProviderInstalled() ? 'cuda' : 'cpu';
  return choice;
}

/**
 * Opens an ONNX session. `auto` and `cuda` try CUDA first (`executionProviders: ['cuda', 'cpu']`)
 * and fall back to CPU with a warning when the CUDA provider cannot load (no GPU, or an
 * onnxruntime-node install without `--onnxruntime-node-install=cuda12`).
 */
export async function openSession(
  path: string,
  choice: ExecutionProviderChoice,
  warn: (msg: string) => void,
): Promise<OpenedSession> {
  const common: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', logSeverityLevel: QUIET };
  if (resolveProviderChoice(choice) === 'cuda') {
    try {
      const session = await RemoteSession.create(path, { ...common, executionProviders: ['cuda', 'cpu'] });
      return { session, provider: 'CUDA' };
    } catch (err) {
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      warn(
        `CUDA execution provider unavailable for ${basename(path)} (${reason}); running on CPU` +
          (choice === 'cuda' ? ' although --execution-provider cuda was asked for' : ''),
      );
    }
  }
  const session = await RemoteSession.create(path, { ...common, executionProviders: ['cpu'] });
  return { session, provider: 'CPU' };
}

/** The tensor metadata of a session input or output, with a clear error when it is not a tensor. */
export function tensorMeta(
  list: readonly ort.InferenceSession.ValueMetadata[],
  name: string,
  model: string,
): ort.InferenceSession.TensorValueMetadata {
  const meta = list.find((m) => m.name === name);
  if (!meta || !meta.isTensor) throw new Error(`${model}: ${name} is not a tensor input/output`);
  return meta;
}

/** A float tensor's values as float32, whether the model computed in float32 or float16. */
export function floatValues(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const data = tensor.data as Uint16Array | { length: number; [i: number]: number };
    if (data instanceof Uint16Array) {
      const out = new Float32Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = fromFloat16Bits(data[i]!);
      return out;
    }
    return Float32Array.from(data as ArrayLike<number>);
  }
  throw new Error(`expected a float tensor, got ${tensor.type}`);
}

