import { Worker } from 'node:worker_threads';
import type { ColumnSource } from 'hyparquet-writer';

/** What the main thread asks of the encoder thread (src/output/parquet-thread.ts), per file id. */
export type EncoderRequest =
  | { type: 'open'; id: number; path: string; columns: ColumnSource[] }
  | { type: 'append'; id: number; columns: ColumnSource[] }
  | { type: 'close'; id: number }
  | { type: 'abandon'; id: number };

/** An error as it crosses threads: its errno code (ENOSPC) kept, which structured cloning drops. */
export interface ThreadError {
  message: string;
  code?: string;
}

/** A request of one file, before the thread adds the file's id. */
type FileRequest = { type: 'append'; columns: ColumnSource[] } | { type: 'close' } | { type: 'abandon' };

export type EncoderReply =
  /** An append was taken (and its row group written if it completed one). */
  | { type: 'ack'; id: number; error?: ThreadError }
  /** The file's first write error, as soon as it is seen. */
  | { type: 'error'; id: number; error: ThreadError }
  /** A close or abandon ended; the file descriptor is closed. */
  | { type: 'done'; id: number; error?: ThreadError };

function errorOf(e: ThreadError): Error {
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {});
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The one encoder thread of this process, started with the first file. It keeps the process
 * alive only while a file is open. If it dies, every open file fails with its error and the next
 * file starts a new one.
 */
class EncoderThread {
  private readonly worker = new Worker(new URL('./parquet-thread.js', import.meta.url));
  private readonly files = new Map<number, EncodedParquetFile>();
  private nextId = 1;

  constructor(private readonly onDeath: () => void) {
    this.worker.on('message', (reply: EncoderReply) => this.files.get(reply.id)?.receive(reply));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', (code) => this.die(new Error(`the parquet encoder thread exited (code ${code})`)));
    // After the listeners: a 'message' listener holds the process again.
    this.worker.unref();
  }

  open(path: string, columns: ColumnSource[]): EncodedParquetFile {
    const id = this.nextId++;
    // Sent first: columns that cannot be cloned throw here, before the thread is held for the file.
    this.worker.postMessage({ type: 'open', id, path, columns } satisfies EncoderRequest);
    const file = new EncodedParquetFile(path, (request) => this.worker.postMessage({ ...request, id } satisfies EncoderRequest), () => this.forget(id));
    if (this.files.size === 0) this.worker.ref();
    this.files.set(id, file);
    return file;
  }

  private forget(id: number): void {
    this.files.delete(id);
    if (this.files.size === 0) this.worker.unref();
  }

  private die(err: Error): void {
    this.onDeath();
    const files = [...this.files.values()];
    this.files.clear();
    for (const file of files) file.fail(err);
    void this.worker.terminate();
  }
}

let thread: EncoderThread | null = null;

/**
 * A parquet file whose row groups are encoded and written on the encoder thread: rows are sent in
 * batches, at most one in flight per file, and the thread acknowledges a batch once the file's
 * stream has room, so neither thread's memory grows with a slow disk or a busy encoder.
 */
export function openEncodedParquet(path: string, columns: ColumnSource[]): EncodedParquetFile {
  const current = (thread ??= new EncoderThread(() => {
    if (thread === current) thread = null;
  }));
  return current.open(path, columns);
}

export class EncodedParquetFile {
  private failure: Error | null = null;
  private inFlight: Promise<void> | null = null;
  private ack: Waiter | null = null;
  private done: Waiter | null = null;
  private ended: Promise<void> | null = null;
  private dead = false;
  private abandoned = false;

  constructor(
    readonly path: string,
    private readonly send: (request: FileRequest) => void,
    private readonly forget: () => void,
  ) {}

  /** The first write or encoding error, if any. */
  get error(): Error | null {
    return this.failure;
  }

  /** Sends rows (column arrays of equal length); waits only while the batch before is still in flight. Await each call before the next. */
  async append(columns: ColumnSource[]): Promise<void> {
    if (this.ended) throw new Error(`parquet file ${this.path} is already closed`);
    if (this.inFlight) await this.inFlight;
    if (this.failure) throw this.failure;
    try {
      this.send({ type: 'append', columns });
    } catch (err) {
      // Not sent (values that cannot be cloned): no ack will come, and the file is short of these rows.
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      throw this.failure;
    }
    // The ack comes in a later turn of the event loop, so the waiter set now is in time for it.
    this.inFlight = new Promise<void>((resolve, reject) => (this.ack = { resolve, reject })).finally(() => (this.inFlight = null));
    // A failed batch is seen through `error` and at close, not as an unhandled rejection here.
    this.inFlight.catch(() => undefined);
  }

  /** Writes the last row group and the footer and closes the file; rejects with the first error. */
  close(): Promise<void> {
    if (this.abandoned) return Promise.reject(new Error(`parquet file ${this.path} was abandoned`));
    return (this.ended ??= this.end('close').then(() => {
      if (this.failure) throw this.failure;
    }));
  }

  /** Stops writing; resolves once the file descriptor is closed (the file can then be removed). */
  abandon(): Promise<void> {
    this.abandoned ||= this.ended === null;
    return (this.ended ??= this.end('abandon')).catch(() => undefined);
  }

  private async end(type: 'close' | 'abandon'): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    if (this.dead) throw this.failure;
    const ended = new Promise<void>((resolve, reject) => (this.done = { resolve, reject }));
    this.send({ type });
    await ended;
  }

  /** A reply from the thread. */
  receive(reply: EncoderReply): void {
    if (reply.error) this.failure ??= errorOf(reply.error);
    if (reply.type === 'ack') {
      this.ack?.resolve();
      this.ack = null;
    } else if (reply.type === 'done') {
      this.forget();
      this.done?.resolve();
      this.done = null;
    }
  }

  /** The thread died: every wait ends with its error. */
  fail(err: Error): void {
    this.dead = true;
    this.failure ??= err;
    this.ack?.reject(err);
    this.done?.reject(err);
    this.ack = this.done = null;
    this.ended ??= Promise.reject(err);
    this.ended.catch(() => undefined);
  }
}
