import { createWriteStream, type WriteStream } from 'node:fs';
import { ByteWriter } from 'hyparquet-writer';
import { abandonFile, drainedOrClosed } from './files.js';

/** Bytes gathered before they go to the file, as hyparquet-writer's own file writer does. */
const CHUNK_BYTES = 1 << 20;

/**
 * A parquet file written through an fs stream, for hyparquet-writer's ParquetWriter. The library's
 * own file writer appends every chunk with writeFileSync, so at each row group and at each shard's
 * commit the coordinator's event loop (the one that answers leases and heartbeats) waited on the
 * disk. Here a full chunk is copied out of the writer's buffer and handed to a write stream, which
 * the thread pool writes; `close` waits until all of it is on the file.
 */
export class ParquetFile {
  readonly writer = new ByteWriter();
  private readonly stream: WriteStream;
  private failure: Error | null = null;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path);
    // Without a listener a disk error (ENOSPC, EACCES) would be an unhandled 'error' event: a crash.
    this.stream.on('error', (err: Error) => (this.failure ??= err));
    const grow = this.writer.ensure.bind(this.writer);
    this.writer.ensure = (size: number): void => {
      if (this.writer.index > CHUNK_BYTES) this.flush();
      grow(size);
    };
    this.writer.finish = (): void => this.flush();
  }

  /** The first write error, if any. */
  get error(): Error | null {
    return this.failure;
  }

  /** Resolves once the file's write stream has room again: what waits for a slow disk stays bounded. */
  drained(): Promise<void> {
    return this.stream.writableNeedDrain ? drainedOrClosed(this.stream) : Promise.resolve();
  }

  /** Ends the file after everything the writer holds; rejects with the first write error. */
  async close(): Promise<void> {
    this.flush();
    if (!this.stream.closed) {
      // Not events.once: it rejects on the 'error' that comes before 'close'; the error is kept above.
      const closed = new Promise<void>((resolve) => this.stream.once('close', () => resolve()));
      this.stream.end();
      await closed;
    }
    if (this.failure) throw this.failure;
  }

  /** Stops writing; resolves once the file descriptor is closed (the file can then be removed). */
  abandon(): Promise<void> {
    return abandonFile(this.stream);
  }

  private flush(): void {
    const { writer } = this;
    if (writer.index === 0) return;
    // A copy: the writer reuses its buffer from index 0 (its offset keeps counting the file's bytes).
    // After a write error the bytes are dropped (the shard fails), so the buffer does not grow.
    if (!this.stream.destroyed) this.stream.write(Buffer.from(writer.buffer.slice(0, writer.index)));
    writer.index = 0;
  }
}
