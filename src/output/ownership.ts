import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CahError } from '../errors.js';
import { fsyncDir, writeFileSynced } from './files.js';
import { PARTIAL_DIR, shardFileNames, shardNamesOnDisk } from './shard-writer.js';

/** Beside the shards: which state file's run owns this output directory. */
export const OWNER_FILE = '.cah-output.json';

export interface OutputOwner {
  stateId: string;
  stateDir: string;
  /** Output shard numbers are shard id + offset: a directory adopted with --incremental keeps its shards. */
  shardOffset: number;
  claimedAt: string;
}

/** How to treat an output directory that is not empty and not this state's. */
export type OutputMode = 'refuse' | 'incremental' | 'overwrite';

/** The output directory belongs to something else; a one-line message saying how to choose. */
export class OutputDirError extends CahError {
  constructor(message: string) {
    super('CAH_OUTPUT_DIR', message);
  }
}

async function readOwner(outDir: string): Promise<OutputOwner | null> {
  try {
    return JSON.parse(await readFile(join(outDir, OWNER_FILE), 'utf8')) as OutputOwner;
  } catch {
    return null;
  }
}

/**
 * Claims `outDir` for the state file `stateId`: its own directory is continued; an empty one is
 * taken; a non-empty one of another run (or of no cah run) is refused, unless the user chose:
 * `incremental` keeps its files and numbers this state's shards after them, `overwrite` deletes
 * its dataset files (only those: shards, embeddings, temp files) first.
 */
export async function claimOutputDir(outDir: string, me: { stateId: string; stateDir: string }, mode: OutputMode): Promise<OutputOwner> {
  await mkdir(outDir, { recursive: true });
  const owner = await readOwner(outDir);
  if (owner?.stateId === me.stateId) return owner;
  const entries = (await readdir(outDir)).filter((n) => n !== OWNER_FILE && n !== PARTIAL_DIR);
  let shardOffset = 0;
  if (entries.length > 0 || owner) {
    const whose = owner ? `the run of the state directory ${owner.stateDir}` : 'no cah run of this state directory';
    if (mode === 'refuse') {
      throw new OutputDirError(
        `--out ${outDir} is not empty and belongs to ${whose}: choose another --out, or --incremental to add this run's shards after its files, or --overwrite to delete its dataset files`,
      );
    }
    const names = await shardNamesOnDisk(outDir);
    if (mode === 'overwrite') {
      for (const name of names) await Promise.all(shardFileNames(name).map((f) => rm(join(outDir, f), { force: true })));
      await rm(join(outDir, PARTIAL_DIR), { recursive: true, force: true });
    } else {
      shardOffset = Math.max(owner?.shardOffset ?? 0, ...[...names].map(Number));
    }
  }
  const claimed: OutputOwner = { ...me, shardOffset, claimedAt: new Date().toISOString() };
  const tmp = join(outDir, `${OWNER_FILE}.tmp`);
  await writeFileSynced(tmp, JSON.stringify(claimed, null, 2));
  await rename(tmp, join(outDir, OWNER_FILE));
  await fsyncDir(outDir);
  return claimed;
}
