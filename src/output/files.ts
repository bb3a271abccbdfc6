import { open, writeFile } from 'node:fs/promises';
import type { WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

/** Flushes a file to disk before it is renamed into place: a crash never leaves a torn output file. */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory's entries (renames, creations, removals) to disk: opened and synced as a file is. */
export function fsyncDir(path: string): Promise<void> {
  return fsyncFile(path);
}

/** Writes a file and flushes it to disk. */
export async function writeFileSynced(path: string, data: string | Buffer): Promise<void> {
  await writeFile(path, data);
  await fsyncFile(path);
}

/**
 * Stops a stream of a shard attempt that is being thrown away. A write still in flight then fails
 * with ERR_STREAM_DESTROYED; that error is expected and must not reach the process as unhandled.
 */
export function abandonStream(stream: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  stream.on('error', () => undefined);
  stream.destroy();
}

/**
 * Abandons a file stream and resolves once its file descriptor is closed: a file stream opens its
 * file asynchronously, so removing the file before then races the open and leaves the file behind.
 */
export async function abandonFile(stream: WriteStream): Promise<void> {
  // Not events.once: it rejects on the 'error' that destroying a stream with writes in flight raises.
  const closed = stream.closed ? null : new Promise<void>((resolve) => stream.once('close', () => resolve()));
  abandonStream(stream);
  await closed;
}

const waiting = new WeakMap<Writable, Promise<void>>();

/**
 * Waits until a stream can take more, or is gone (an abandoned attempt must not leave writers waiting).
 * Concurrent waiters share one listener pair, so many queued writes add no listeners per write.
 */
export function drainedOrClosed(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  let wait = waiting.get(stream);
  if (!wait) {
    wait = new Promise((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('close', done);
        waiting.delete(stream);
        resolve();
      };
      stream.on('drain', done);
      stream.on('close', done);
    });
    waiting.set(stream, wait);
  }
  return wait;
}
