import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CahError } from '../errors.js';

export const WORKER_TOKEN_FILE = 'worker-token';

/** Fewer characters, or fewer distinct ones, than a guessable token has. */
const MIN_TOKEN_LENGTH = 32;
const MIN_DISTINCT_CHARS = 10;

/** A token file cah will not use: its message says how to replace it. */
export class WeakTokenError extends CahError {
  constructor(message: string) {
    super('CAH_WEAK_TOKEN', message);
  }
}

function isWeak(token: string): boolean {
  return token.length < MIN_TOKEN_LENGTH || new Set(token).size < MIN_DISTINCT_CHARS;
}

async function writeToken(stateDir: string): Promise<string> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, WORKER_TOKEN_FILE);
  const token = randomBytes(32).toString('hex');
  // Written beside and renamed: a reader never sees half a token, and the mode is right from the start.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, token + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  return token;
}

/**
 * The shared secret workers present on every call. Generated once per state directory, kept in a
 * 0600 file; never the Hetzner token (that one never leaves the coordinator machine). A file
 * readable by others is made 0600 again; a weak token (short, or few distinct characters) is
 * refused with a pointer to `cah token rotate`.
 */
export async function ensureWorkerToken(stateDir: string): Promise<string> {
  const path = join(stateDir, WORKER_TOKEN_FILE);
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return writeToken(stateDir);
  }
  if (isWeak(token)) {
    throw new WeakTokenError(`the worker token in ${path} is weak (short or repetitive): replace it with \`cah token rotate\``);
  }
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  return token;
}

/** A new random worker token replaces the old one; workers holding the old one are refused from then on. */
export async function rotateWorkerToken(stateDir: string): Promise<{ path: string }> {
  await writeToken(stateDir);
  return { path: join(stateDir, WORKER_TOKEN_FILE) };
}

export function tokensEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
