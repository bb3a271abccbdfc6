import { Worker } from 'node:worker_threads';
import type { ImagePreprocessing, PixelDType } from './image-preprocess.js';
import type { PreprocessJob, PreprocessJobResult, PreprocessWorkerData } from './preprocess-worker.js';

/** A preprocessed batch living in shared memory; `release()` hands the memory back for reuse. */
export interface PreparedPixels {
  /** `[count, 3, height, width]`, float32 values or float16 bits. */
  data: Float32Array | Uint16Array;
  count: number;
  /** Per image: null when usable, else why not (its slot is zero). */
  errors: (string | null)[];
  release(): void;
}

export interface PreprocessPoolOptions {
  preprocessing: ImagePreprocessing;
  dtype: PixelDType;
  threads: number;
  /** Per-image decode time limit, whole seconds (default: DEFAULT_DECODE_TIMEOUT_SECONDS, 10). */
  decodeTimeoutSeconds?: number;
}

interface PendingChunk {
  job: PreprocessJob;
  resolve: (r: PreprocessJobResult) => void;
  reject: (err: Error) => void;
}

/**
 * Starts the worker script beside this module: `.js` when compiled; under tsx (tests) the `.ts` file,
 * loaded through tsx's API because Node 20 workers ignore `--import tsx` in execArgv.
 */
function startWorker(workerData: PreprocessWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./preprocess-worker.js', import.meta.url), { workerData });
  const script = new URL('./preprocess-worker.ts', import.meta.url).href;
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(script)}); });`;
  return new Worker(code, { eval: true, workerData });
}

/** Takes a free buffer of a fitting size (at most twice the need), keeping the free list short. */
function reuse<T extends ArrayBufferLike>(free: T[], bytes: number): T | null {
  const i = free.findIndex((b) => b.byteLength >= bytes && b.byteLength <= bytes * 2);
  if (i >= 0) return free.splice(i, 1)[0]!;
  if (free.length >= 3) free.shift();
  return null;
}

/**
 * Decodes, resizes and normalises JPEGs on worker threads straight into shared memory, so the main
 * thread only hands out work and makes one copy per batch.
 */
export class PreprocessPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, PendingChunk>();
  private readonly queue: PendingChunk[] = [];
  private readonly freeShared: SharedArrayBuffer[] = [];
  private readonly elementsPerImage: number;
  private readonly bytesPerElement: number;
  private nextJobId = 0;
  private closed = false;

  constructor(private readonly opts: PreprocessPoolOptions) {
    const { width, height } = opts.preprocessing;
    this.elementsPerImage = width * height * 3;
    this.bytesPerElement = opts.dtype === 'float32' ? 4 : 2;
    for (let i = 0; i < Math.max(1, opts.threads); i++) this.idle.push(this.spawn());
  }

  get threads(): number {
    return this.idle.length + this.busy.size;
  }

  async run(images: readonly Uint8Array[]): Promise<PreparedPixels> {
    if (this.closed) throw new Error('preprocessing pool is closed');
    const target = this.takeShared(Math.max(1, images.length) * this.elementsPerImage * this.bytesPerElement);
    const chunkSize = Math.max(4, Math.ceil(images.length / (this.threads * 4)));
    const chunks: Promise<PreprocessJobResult>[] = [];
    for (let first = 0; first < images.length; first += chunkSize) {
      const job: PreprocessJob = { id: this.nextJobId++, images: images.slice(first, first + chunkSize), target, firstSlot: first };
      chunks.push(new Promise((resolve, reject) => this.enqueue({ job, resolve, reject })));
    }
    // On failure the buffer is not reused: other chunks of this batch may still be writing into it.
    const results = await Promise.all(chunks);
    const elements = images.length * this.elementsPerImage;
    // Still in shared memory: the session thread reads it without a copy on this (the event loop's)
    // thread, and makes the plain copy onnxruntime-node needs itself.
    const data = this.opts.dtype === 'float32' ? new Float32Array(target, 0, elements) : new Uint16Array(target, 0, elements);
    let released = false;
    return {
      data,
      count: images.length,
      errors: results.flatMap((r) => r.errors),
      release: () => {
        if (released) return;
        released = true;
        if (!this.closed) this.freeShared.push(target);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new Error('preprocessing pool closed'));
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    this.freeShared.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  /** Batches of one size reuse their memory instead of allocating (and zeroing) it each time. */
  private takeShared(bytes: number): SharedArrayBuffer {
    return reuse(this.freeShared, bytes) ?? new SharedArrayBuffer(bytes);
  }

  private enqueue(pending: PendingChunk): void {
    this.queue.push(pending);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const pending = this.queue.shift()!;
      this.busy.set(worker, pending);
      worker.ref();
      worker.postMessage(pending.job);
    }
  }

  private spawn(): Worker {
    const worker = startWorker({ preprocessing: this.opts.preprocessing, dtype: this.opts.dtype, decodeTimeoutSeconds: this.opts.decodeTimeoutSeconds });
    // Idle threads must not keep the process alive; busy ones must (someone awaits their result).
    worker.unref();
    worker.on('message', (result: PreprocessJobResult) => {
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      if (this.closed) return;
      this.idle.push(worker);
      pending?.resolve(result);
      this.dispatch();
    });
    let gone = false;
    const lost = (err: Error): void => {
      if (gone) return;
      gone = true;
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      const idleAt = this.idle.indexOf(worker);
      if (idleAt >= 0) this.idle.splice(idleAt, 1);
      pending?.reject(new Error(`preprocessing thread failed: ${err.message}`));
      if (!this.closed) {
        this.idle.push(this.spawn());
        this.dispatch();
      }
    };
    worker.on('error', lost);
    worker.on('exit', (code) => {
      if (!this.closed) lost(new Error(`exited with code ${code}`));
    });
    return worker;
  }
}
