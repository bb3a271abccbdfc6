import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { makeStatePrivate } from './private-files.js';
import { CahError } from '../errors.js';

export type Db = Database.Database;

/**
 * Schema migrations, applied in order. PRAGMA user_version holds the number applied, so an older
 * state file is brought up to date on open and a newer one is refused.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    out_dir TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    exit_reason TEXT
  );
  CREATE TABLE shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'leased', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    fencing_token INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    added_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    done_at INTEGER,
    output_shard TEXT,
    candidates INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    kept INTEGER NOT NULL DEFAULT 0,
    filtered_out INTEGER NOT NULL DEFAULT 0,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    output_bytes INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX shards_state ON shards (state, id);
  CREATE TABLE actors (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'remote',
    host TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    version TEXT,
    state TEXT NOT NULL CHECK (state IN ('PENDING_CREATION', 'ALIVE', 'RESTARTING', 'DEAD')),
    registered_at INTEGER NOT NULL,
    last_heartbeat INTEGER,
    death_cause TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,
    current_shard_id INTEGER,
    candidates INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE dedup_keys (
    key TEXT PRIMARY KEY,
    shard_id INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX dedup_keys_shard ON dedup_keys (shard_id);
  CREATE TABLE error_counts (
    message TEXT PRIMARY KEY,
    count INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO counters (name, value) VALUES ('fencing_token', 0);
  `,
  // Leases remember when they were granted (unreported and over-age leases come back), failed
  // attempts wait before the next (backoff), actors are bound to the session that registered them,
  // and the state file has an identity that output directories record.
  `
  ALTER TABLE shards ADD COLUMN leased_at INTEGER;
  ALTER TABLE shards ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE actors ADD COLUMN session TEXT;
  CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO meta (name, value) VALUES ('state_id', lower(hex(randomblob(16))));
  `,
  // Per state, how many shards and the sums of their counters, kept by triggers in the same
  // transaction as every change: the dashboard and /metrics read them every second, and counting
  // a million shards took 57 ms and summing the done ones 342 ms on the coordinator's event loop.
  // (INSERT OR REPLACE on shards would delete a row without its trigger: write shards with UPDATE.)
  `
  CREATE TABLE shard_totals (
    state TEXT PRIMARY KEY,
    shards INTEGER NOT NULL DEFAULT 0,
    candidates INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    kept INTEGER NOT NULL DEFAULT 0,
    filtered_out INTEGER NOT NULL DEFAULT 0,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    output_bytes INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  INSERT INTO shard_totals (state) VALUES ('queued'), ('leased'), ('done'), ('failed');
  UPDATE shard_totals SET shards = t.n, candidates = t.candidates, duplicates = t.duplicates,
    downloaded = t.downloaded, failed = t.failed, kept = t.kept, filtered_out = t.filtered_out,
    bytes_in = t.bytes_in, output_bytes = t.output_bytes
    FROM (SELECT state AS s, COUNT(*) AS n,
        COALESCE(SUM(candidates), 0) AS candidates,
        COALESCE(SUM(duplicates), 0) AS duplicates,
        COALESCE(SUM(downloaded), 0) AS downloaded,
        COALESCE(SUM(failed), 0) AS failed,
        COALESCE(SUM(kept), 0) AS kept,
        COALESCE(SUM(filtered_out), 0) AS filtered_out,
        COALESCE(SUM(bytes_in), 0) AS bytes_in,
        COALESCE(SUM(output_bytes), 0) AS output_bytes
      FROM shards GROUP BY state) AS t
    WHERE shard_totals.state = t.s;
  CREATE TRIGGER shard_totals_insert AFTER INSERT ON shards BEGIN
    UPDATE shard_totals SET shards = shards + 1, candidates = candidates + NEW.candidates,
      duplicates = duplicates + NEW.duplicates, downloaded = downloaded + NEW.downloaded,
      failed = failed + NEW.failed, kept = kept + NEW.kept, filtered_out = filtered_out + NEW.filtered_out,
      bytes_in = bytes_in + NEW.bytes_in,
      output_bytes = output_bytes + NEW.output_bytes WHERE state = NEW.state;
  END;
  CREATE TRIGGER shard_totals_delete AFTER DELETE ON shards BEGIN
    UPDATE shard_totals SET shards = shards - 1, candidates = candidates - OLD.candidates,
      duplicates = duplicates - OLD.duplicates, downloaded = downloaded - OLD.downloaded,
      failed = failed - OLD.failed, kept = kept - OLD.kept, filtered_out = filtered_out - OLD.filtered_out,
      bytes_in = bytes_in - OLD.bytes_in,
      output_bytes = output_bytes - OLD.output_bytes WHERE state = OLD.state;
  END;
  CREATE TRIGGER shard_totals_update AFTER UPDATE OF state, candidates, duplicates, downloaded, failed, kept,
    filtered_out, bytes_in, output_bytes ON shards BEGIN
    UPDATE shard_totals SET shards = shards - 1, candidates = candidates - OLD.candidates,
      duplicates = duplicates - OLD.duplicates, downloaded = downloaded - OLD.downloaded,
      failed = failed - OLD.failed, kept = kept - OLD.kept, filtered_out = filtered_out - OLD.filtered_out,
      bytes_in = bytes_in - OLD.bytes_in,
      output_bytes = output_bytes - OLD.output_bytes WHERE state = OLD.state;
    UPDATE shard_totals SET shards = shards + 1, candidates = candidates + NEW.candidates,
      duplicates = duplicates + NEW.duplicates, downloaded = downloaded + NEW.downloaded,
      failed = failed + NEW.failed, kept = kept + NEW.kept, filtered_out = filtered_out + NEW.filtered_out,
      bytes_in = bytes_in + NEW.bytes_in,
      output_bytes = output_bytes + NEW.output_bytes WHERE state = NEW.state;
  END;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaTooNewError extends CahError {
  constructor(message: string) {
    super('CAH_SCHEMA_TOO_NEW', message);
  }
}

/** The state file is damaged, gone or unreadable: the coordinator stops with this one line. */
export class StateFileError extends CahError {
  constructor(message: string) {
    super('CAH_STATE_FILE', message);
  }
}

/** An error raised by SQLite itself (disk I/O, corruption, a locked or deleted file). */
export function isSqliteError(err: unknown): boolean {
  return err instanceof Database.SqliteError || (typeof (err as { code?: unknown })?.code === 'string' && String((err as { code: string }).code).startsWith('SQLITE_'));
}

/**
 * Opens (creating if needed) the state file: WAL so `cah status` can read while `cah gpu` writes;
 * synchronous=FULL by default; the writes that must survive a power cut are flushed by WalFlusher, the
 * others are relaxed (withoutSync). quick_check at open: a damaged file
 * is a one-line StateFileError, never a failure charged to shards later.
 */
export function openDb(path: string, opts: { readonly?: boolean } = {}): Db {
  if (!opts.readonly) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let db: Db | null = null;
  try {
    db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    if (!opts.readonly) makeStatePrivate(path);
    db.pragma('busy_timeout = 5000');
    const check = (db.pragma('quick_check(3)') as { quick_check: string }[]).map((r) => r.quick_check);
    if (check[0] !== 'ok') {
      const found = check.join(' ').replace(/\*\*\* in database main \*\*\*/g, '').replace(/\s+/g, ' ').trim().slice(0, 200);
      throw new StateFileError(`state file ${path} is damaged (${found}): ${RESTORE_HINT}`);
    }
    cacheStatements(db);
    if (opts.readonly) return db;
    if (db.pragma('journal_mode = WAL', { simple: true }) === 'wal') walMode.add(db);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof StateFileError || err instanceof SchemaTooNewError || !isSqliteError(err)) throw err;
    throw new StateFileError(`state file ${path} cannot be used: ${(err as Error).message}: ${RESTORE_HINT}`);
  }
}

/**
 * Every query in the store is written where it is used, as `db.prepare(sql)`; compiling it each
 * time cost a lease about a third of its time on the event loop. The connection keeps one compiled
 * statement per SQL text instead (the texts are the store's constants; past MAX_CACHED_STATEMENTS a
 * text is compiled each time rather than kept). Each `prepare` hands it back in the default mode (rows as
 * objects), so a call site that plucks does not change what the next one gets; a handle kept across
 * another call site's `prepare` of the same text is reset too, so the store never keeps one.
 */
const MAX_CACHED_STATEMENTS = 256;

function cacheStatements(db: Db): void {
  const compile = db.prepare.bind(db);
  const compiled = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = compiled.get(sql);
    if (!statement) {
      statement = compile(sql);
      if (compiled.size < MAX_CACHED_STATEMENTS) compiled.set(sql, statement);
    } else if (statement.reader) {
      statement.pluck(false).expand(false).raw(false);
    }
    return statement;
  }) as Db['prepare'];
}

/** Connections in WAL mode, where a relaxed commit is safe (see withoutSync). */
const walMode = new WeakSet<Db>();

/**
 * Runs writes whose loss in a power cut costs nothing (leases, renewals, dedup claims, actor
 * bookkeeping: a restart requeues every leased shard and redoes it from scratch) without waiting
 * for an fsync, which on the event loop costs every other call milliseconds. The WAL is written in
 * order, so the next durable commit (a shard marked done) syncs these too: a power cut loses at
 * most a suffix of relaxed writes, never one a durable commit depends on.
 */
export function withoutSync<T>(db: Db, fn: () => T): T {
  // SQLite refuses to change the level inside a transaction: there the outer one decides. Outside
  // WAL (a file system that refused it) NORMAL could corrupt the file in a power cut: stay FULL.
  if (db.inTransaction || !walMode.has(db)) return fn();
  db.pragma('synchronous = NORMAL');
  try {
    return fn();
  } finally {
    db.pragma('synchronous = FULL');
  }
}

/** fsync of a file by path, on libuv's thread pool. */
async function fsyncPath(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

/**
 * Group commit for the writes that must survive a power cut (a shard marked done, its error
 * counts): they are committed relaxed, and `flush()` then fsyncs the WAL on libuv's thread pool,
 * one fsync for every commit made before it started. A commit with synchronous=FULL would fsync on
 * the event loop instead, where on a slow disk each one stalls every lease, heartbeat and sample
 * stream for the fsync's duration. Outside WAL mode commits stay FULL and there is nothing to flush.
 */
export class WalFlusher {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** After a failed fsync the kernel may have dropped the dirty pages: no later fsync proves anything. */
  private failed: Error | null = null;

  constructor(
    private readonly db: Db,
    private readonly walPath: string,
    private readonly syncFile: (path: string) => Promise<void> = fsyncPath,
  ) {}

  /** Runs `fn` in one transaction without waiting for the disk; `flush()` makes it durable. */
  commit<T>(fn: () => T): T {
    // Inside an outer transaction this would be a savepoint, committed (and written) only later.
    if (this.db.inTransaction) throw new Error('a durable commit cannot run inside another transaction');
    return withoutSync(this.db, this.db.transaction(fn));
  }

  /** Resolves once every commit made before this call is on disk. */
  flush(): Promise<void> {
    if (!walMode.has(this.db)) return Promise.resolve();
    if (this.failed) return Promise.reject(this.failed);
    // An fsync already running may have started before the caller's commit: wait for the next one.
    if (this.running) {
      this.next ??= this.running.then(() => {
        this.next = null;
        return this.failed ? Promise.reject(this.failed) : this.sync();
      });
      return this.next;
    }
    return this.sync();
  }

  private sync(): Promise<void> {
    const run = this.syncFile(this.walPath).catch((err: unknown) => {
      this.failed ??= err instanceof Error ? err : new Error(String(err));
      throw err;
    });
    // Callers see the fsync's failure; the queue only needs to know that it ended.
    const ended = run.then(
      () => undefined,
      () => undefined,
    );
    this.running = ended;
    void ended.then(() => {
      if (this.running === ended) this.running = null;
    });
    return run;
  }
}

/** The WAL of the connection's main database, where SQLite puts it (next to the file a symlink points at). */
export function walPathOf(db: Db): string {
  const main = (db.pragma('database_list') as { name: string; file: string }[]).find((d) => d.name === 'main');
  if (!main?.file) throw new StateFileError('the state file has no path (an in-memory database cannot be made durable)');
  return `${main.file}-wal`;
}

const RESTORE_HINT = 'restore it from a backup (`cah state backup`), or move it away to start afresh';

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new SchemaTooNewError(
      `state file schema version ${current} is newer than this cah (${SCHEMA_VERSION}): upgrade cah`,
    );
  }
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
