import { join } from 'node:path';
import { openDb, WalFlusher, type Db } from './db.js';
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
    this.wal = new WalFlusher(db, `${path}-wal`);
    this.shards = new ShardTable(db);
    this.actors = new ActorTable(db);
    this.dedup = new DedupTable(db);
    this.runs = new RunTable(db);
  }

  /**
   * Runs `fn`'s writes as one transaction that must survive a power cut; they are on disk once the
   * returned `durable` resolves (group commit: the fsync runs off the event loop, see WalFlusher).
   */
  commitDurably<T>(fn: () => T): { result: T; durable: Promise<void> } {
    const result = this.wal.commit(fn);
    const durable = this.wal.flush();
    // A caller that gives up before awaiting it must not turn a failed fsync into an unhandled rejection.
    durable.catch(() => undefined);
    return { result, durable };
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
