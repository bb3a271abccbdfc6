import { open, writeFile } from 'node:fs/promises';
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

/** Flushes a directory's entries (renames, creations, removals) to disk. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
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

/** Waits until a stream can take more, or is gone (an abandoned attempt must not leave writers waiting). */
export function drainedOrClosed(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
