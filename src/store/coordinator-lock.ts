import Database from 'better-sqlite3';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CahError } from '../errors.js';

/** Who holds a state file as its coordinator. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

/** Another live coordinator already runs on this state file. */
export class StateLockedError extends CahError {
  constructor(
    readonly lockPath: string,
    readonly holder: LockHolder | null,
  ) {
    super(
      'CAH_STATE_LOCKED',
      holder
        ? `another coordinator (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}) is running on this state file`
        : 'another coordinator is running on this state file',
    );
  }
}

function readHolder(infoPath: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(infoPath, 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

/**
 * One coordinator per state file: two would requeue each other's leases and write the same output
 * shards. The lock is an OS lock: an exclusive SQLite transaction, held open for the coordinator's
 * life, on a small file beside the state file (SQLite takes it with fcntl, atomically; the OS
 * drops it when the process dies, so a crashed coordinator's lock needs no takeover). Who holds
 * it is written beside it, for the error message only. Returns the release function.
 */
export function acquireCoordinatorLock(dbPath: string): () => void {
  const lockPath = `${dbPath}.coordinator.lock`;
  const infoPath = `${lockPath}.json`;
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.pragma('journal_mode = DELETE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') {
      throw new StateLockedError(lockPath, readHolder(infoPath));
    }
    throw err;
  }
  const me: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  writeFileSync(infoPath, JSON.stringify(me), { mode: 0o600 });
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (readHolder(infoPath)?.pid === me.pid) rmSync(infoPath, { force: true });
    lock.exec('ROLLBACK');
    lock.close();
  };
}
