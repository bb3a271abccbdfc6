import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** What the encoders use of an ONNX session: the real one, or one running on its own thread. */
export type SessionLike = Pick<ort.InferenceSession, 'inputNames' | 'outputNames' | 'inputMetadata' | 'outputMetadata' | 'run' | 'release'>;

export interface WireTensor {
  type: 'float32' | 'float16' | 'int32' | 'int64';
  data: Float32Array | Uint16Array | Int32Array | BigInt64Array;
  dims: number[];
}

export interface SessionThreadData {
  path: string;
  options: ort.InferenceSession.SessionOptions;
}

export type SessionThreadRequest =
  | { kind: 'run'; id: number; feeds: Record<string, WireTensor> }
  | { kind: 'release'; id: number };

export type SessionThreadReply =
  | {
      kind: 'ready';
      inputNames: string[];
      outputNames: string[];
      inputMetadata: ort.InferenceSession.ValueMetadata[];
      outputMetadata: ort.InferenceSession.ValueMetadata[];
    }
  | { kind: 'failed'; message: string }
  | { kind: 'result'; id: number; outputs: Record<string, WireTensor> }
  | { kind: 'error'; id: number; message: string }
  | { kind: 'released'; id: number };

/** The thread script beside this module (`.js` built; under tsx the `.ts` through tsx's API, as Node 20 workers need). */
function startThread(data: SessionThreadData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./session-thread.js', import.meta.url), { workerData: data });
  const script = new URL('./session-thread.ts', import.meta.url).href;
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(script)}); });`;
  return new Worker(code, { eval: true, workerData: data });
}

/**
 * An ONNX session on a worker thread: `run` posts the feeds (copied) and resolves with the outputs
 * (transferred). Inference never blocks the caller's event loop.
 */
export class RemoteSession implements SessionLike {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: SessionThreadReply) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[],
    readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[],
  ) {
    worker.on('message', (reply: SessionThreadReply) => {
      if (!('id' in reply)) return;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      waiter?.resolve(reply);
    });
    const lost = (err: Error): void => {
      this.dead ??= new Error(`ONNX session thread failed: ${err.message}`);
      for (const waiter of this.pending.values()) waiter.reject(this.dead);
      this.pending.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`exited with code ${code}`)));
    worker.unref();
  }

  /** Creates the session on a new thread; rejects with ONNX Runtime's message when it cannot. */
  static async create(path: string, options: ort.InferenceSession.SessionOptions): Promise<RemoteSession> {
    const worker = startThread({ path, options });
    const first = await new Promise<SessionThreadReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`ONNX session thread exited with code ${code}`)));
    });
    if (first.kind !== 'ready') {
      await worker.terminate();
      throw new Error(first.kind === 'failed' ? first.message : `unexpected ${first.kind} from the ONNX session thread`);
    }
    return new RemoteSession(worker, first.inputNames, first.outputNames, first.inputMetadata, first.outputMetadata);
  }

  async run(feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType> {
    const wire: Record<string, WireTensor> = {};
    for (const [name, value] of Object.entries(feeds)) {
      const t = value as ort.Tensor;
      wire[name] = { type: t.type as WireTensor['type'], data: t.data as WireTensor['data'], dims: [...t.dims] };
    }
    const reply = await this.request({ kind: 'run', id: this.nextId++, feeds: wire });
    if (reply.kind === 'error') throw new Error(reply.message);
    if (reply.kind !== 'result') throw new Error(`unexpected ${reply.kind} from the ONNX session thread`);
    const out: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(reply.outputs)) out[name] = new ort.Tensor(t.type, t.data, t.dims);
    return out;
  }

  async release(): Promise<void> {
    if (!this.dead) await this.request({ kind: 'release', id: this.nextId++ }).catch(() => undefined);
    this.dead ??= new Error('ONNX session released');
    await this.worker.terminate();
  }

  private request(message: SessionThreadRequest): Promise<SessionThreadReply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(message);
    });
  }
}
