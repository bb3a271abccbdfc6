import { join } from 'node:path';
import { openDb, WalFlusher, walPathOf, type Db } from './db.js';
import { acquireCoordinatorLock } from './coordinator-lock.js';
import { ActorTable } from './actors.js';
import { DedupTable } from './dedup.js';
import { RunTable } from './runs.js';
import { ShardTable } from './shards.js';

export const STATE_FILE = 'cah.sqlite';

/** The one owner of persistent state: a single SQLite file in the state directory. */
export class Store {
  readonly shards: ShardTable;
  readonly actors: ActorTable;
  readonly dedup: DedupTable;
  readonly runs: RunTable;
  private readonly wal: WalFlusher;

  private constructor(readonly db: Db, readonly path: string) {
    this.wal = new WalFlusher(db, walPathOf(db));
    this.shards = new ShardTable(db);
    this.actors = new ActorTable(db);
    this.dedup = new DedupTable(db);
    this.runs = new RunTable(db);
  }

  /**
   * Runs `fn`'s writes as one transaction that must survive a power cut, without waiting for the
   * disk: they are on disk once a later `synced()` resolves (group commit, see WalFlusher).
   */
  commitUnsynced<T>(fn: () => T): T {
    return this.wal.commit(fn);
  }

  /** Resolves once every commit made before this call is on disk (one fsync, off the event loop). */
  synced(): Promise<void> {
    return this.wal.flush();
  }

  /** A random identity of this state file, recorded by the output directories it writes. */
  get stateId(): string {
    return this.db.prepare(`SELECT value FROM meta WHERE name = 'state_id'`).pluck().get() as string;
  }

  static open(path: string, opts: { readonly?: boolean } = {}): Store {
    return new Store(openDb(path, opts), path);
  }

  static openInStateDir(stateDir: string, opts: { readonly?: boolean } = {}): Store {
    return Store.open(join(stateDir, STATE_FILE), opts);
  }

  /** Claims the state file for one coordinator (throws StateLockedError); returns the release. */
  lockForCoordinator(): () => void {
    return acquireCoordinatorLock(this.path);
  }

  /** SQLite's full integrity_check: ['ok'] or the problems found (at most `limit`). */
  integrityCheck(limit = 20): string[] {
    return (this.db.pragma(`integrity_check(${limit})`) as { integrity_check: string }[]).map((r) => r.integrity_check);
  }

  /** A consistent copy of the state file, taken with SQLite's online backup while a coordinator writes. */
  async backup(destination: string): Promise<void> {
    await this.db.backup(destination);
  }

  close(): void {
    this.db.close();
  }
}
