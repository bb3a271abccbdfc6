import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Who holds a state file as its coordinator. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

/** Another live coordinator already runs on this state file. */
export class StateLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holder: LockHolder,
  ) {
    super(`another coordinator (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}) is running on this state file`);
    this.name = 'StateLockedError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(lockPath: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(lockPath, 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

/**
 * One coordinator per state file: two would requeue each other's leases and write the same output
 * shards. The lock is a file created exclusively beside the SQLite file; one left by a coordinator
 * that died (its pid gone on this host) is taken over. Returns the release function.
 */
export function acquireCoordinatorLock(dbPath: string): () => void {
  const lockPath = `${dbPath}.coordinator.lock`;
  const me: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lockPath, JSON.stringify(me), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = readHolder(lockPath);
      if (holder && (holder.host !== me.host || isAlive(holder.pid))) throw new StateLockedError(lockPath, holder);
      rmSync(lockPath, { force: true });
    }
  }
  return () => {
    if (readHolder(lockPath)?.pid === me.pid) rmSync(lockPath, { force: true });
  };
}
