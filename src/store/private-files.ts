import { chmodSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Removes permission bits beyond `mode` (never adds any); a missing path is fine. */
function tighten(path: string, mode: number): void {
  try {
    if ((statSync(path).mode & 0o777 & ~mode) !== 0) chmodSync(path, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * The state directory holds the run's state, the worker token and SSH keys: 0700, the SQLite
 * files (with WAL and shared memory) and logs 0600, also when an older cah created them wider.
 */
export function makeStatePrivate(stateFile: string): void {
  const dir = dirname(stateFile);
  tighten(dir, 0o700);
  for (const suffix of ['', '-wal', '-shm', '-journal']) tighten(stateFile + suffix, 0o600);
  const logs = join(dir, 'logs');
  tighten(logs, 0o700);
  let names: string[] = [];
  try {
    names = readdirSync(logs);
  } catch {
    return;
  }
  for (const name of names) tighten(join(logs, name), 0o600);
}
