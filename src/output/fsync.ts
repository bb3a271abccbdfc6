import { open } from 'node:fs/promises';

/** Flushes a file to disk before it is renamed into place: a crash never leaves a torn output file. */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
