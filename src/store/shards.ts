import { randomBytes } from 'node:crypto';
import { withoutSync, type Db } from './db.js';

/**
 * Every change of a shard's state happens in this file:
 *   queued → leased (lease) → done (complete) | queued (lease returned, will retry) | failed (out of retries)
 * A lease carries a fencing token, fresh and random for every lease, so that a worker whose lease
 * was taken away (expired, actor declared dead, coordinator restarted) can no longer complete the
 * shard, and no client can guess another's lease.
 */
export type ShardState = 'queued' | 'leased' | 'done' | 'failed';

/**
 * What a shard's samples came to, recorded when it is done and summed over done shards; the
 * counters of a running shard (the worker's, the coordinator's attempt) pick from these.
 */
export interface ShardSampleCounts {
  /** Candidates new to the run (the shard's own: duplicates not included). */
  candidates: number;
  /** Candidates dropped because another shard of the run already has their key. */
  duplicates: number;
  /** Images downloaded and resized. */
  downloaded: number;
  /** Downloads or resizes that failed (and samples refused as malformed). */
  failed: number;
  kept: number;
  /** Downloaded pairs the filter rejected (CLIP similarity under the threshold, language, scorers). */
  filteredOut: number;
  /** Image bytes received from the worker. */
  bytesIn: number;
  /** Size of the shard's tar. */
  outputBytes: number;
}

/** The SQL column of each counter. */
const COUNT_COLUMNS: Record<keyof ShardSampleCounts, string> = {
  candidates: 'candidates',
  duplicates: 'duplicates',
  downloaded: 'downloaded',
  failed: 'failed',
  kept: 'kept',
  filteredOut: 'filtered_out',
  bytesIn: 'bytes_in',
  outputBytes: 'output_bytes',
};
const COUNTS = Object.entries(COUNT_COLUMNS) as [keyof ShardSampleCounts, string][];

export interface ShardRow extends ShardSampleCounts {
  id: number;
  source: string;
  state: ShardState;
  attempts: number;
  failures: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  fencingToken: number;
  error: string | null;
  addedAt: number;
  updatedAt: number;
  doneAt: number | null;
  outputShard: string | null;
}

export interface Lease {
  shardId: number;
  source: string;
  fencingToken: number;
  attempt: number;
}

export interface ShardResultCounts extends ShardSampleCounts {
  outputShard: string;
}

export interface ReturnedLease {
  shardId: number;
  owner: string | null;
  nowState: ShardState;
}

/** A lease as the supervisor sees it. */
export interface HeldLease {
  shardId: number;
  fencingToken: number;
  owner: string | null;
  leasedAt: number | null;
}

/** Failed attempts wait before the shard is leased again: base · 2^(failures−1), at most a minute. */
export function retryDelayMs(baseMs: number, failures: number): number {
  return failures <= 0 || baseMs <= 0 ? 0 : Math.min(60_000, baseMs * 2 ** (failures - 1));
}

/**
 * A fencing token: 53 random bits, exact as a JS number (the wire's uint64 is decoded to a number),
 * as a SQLite INTEGER and as a protobuf uint64; never 0 (the proto3 default).
 */
export function randomFencingToken(): number {
  const bytes = randomBytes(7);
  const high = bytes.readUIntBE(0, 3) & 0x1f_ffff;
  const token = high * 2 ** 32 + bytes.readUInt32BE(3);
  return token === 0 ? 1 : token;
}

const COLUMNS = `id, source, state, attempts, failures, lease_owner AS leaseOwner, lease_expires_at AS leaseExpiresAt,
  fencing_token AS fencingToken, error, added_at AS addedAt, updated_at AS updatedAt, done_at AS doneAt,
  output_shard AS outputShard, ${COUNTS.map(([name, column]) => `${column} AS ${name}`).join(', ')}`;

/** shard_totals (kept by triggers, src/store/db.ts) has a column of the same name for each counter. */
const TOTALS_SQL = {
  counts: `SELECT state, shards AS n FROM shard_totals`,
  done: `SELECT ${COUNTS.map(([name, column]) => `${column} AS ${name}`).join(', ')} FROM shard_totals WHERE state = 'done'`,
};
/** The same figures counted from every shard: for a read-only open of a state file older than shard_totals (`cah status` beside an older coordinator). */
export const SCANNED_TOTALS_SQL = {
  counts: `SELECT state, COUNT(*) AS n FROM shards GROUP BY state`,
  done: `SELECT ${COUNTS.map(([name, column]) => `COALESCE(SUM(${column}), 0) AS ${name}`).join(', ')} FROM shards WHERE state = 'done'`,
};
const COMPLETE_SQL = `UPDATE shards SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, error = NULL, done_at = ?,
    updated_at = ?, output_shard = ?, ${COUNTS.map(([, column]) => `${column} = ?`).join(', ')}
  WHERE id = ? AND state = 'leased' AND fencing_token = ?`;

export class ShardTable {
  private readonly totals: typeof TOTALS_SQL;

  constructor(private readonly db: Db) {
    const kept = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shard_totals'`).get() !== undefined;
    this.totals = kept ? TOTALS_SQL : SCANNED_TOTALS_SQL;
  }

  /** Adds sources not already known; returns how many were new. */
  add(sources: readonly string[], now: number = Date.now()): { added: number; existing: number } {
    const insert = this.db.prepare(
      `INSERT OR IGNORE INTO shards (source, added_at, updated_at) VALUES (?, ?, ?)`,
    );
    let added = 0;
    this.db.transaction(() => {
      for (const source of sources) added += insert.run(source, now, now).changes;
    })();
    return { added, existing: sources.length - added };
  }

  list(): ShardRow[] {
    return this.db.prepare(`SELECT ${COLUMNS} FROM shards ORDER BY id`).all() as ShardRow[];
  }

  get(id: number): ShardRow | undefined {
    return this.db.prepare(`SELECT ${COLUMNS} FROM shards WHERE id = ?`).get(id) as ShardRow | undefined;
  }

  /** Shards per state: four rows of shard_totals, whatever the number of shards. */
  counts(): Record<ShardState, number> {
    const counts: Record<ShardState, number> = { queued: 0, leased: 0, done: 0, failed: 0 };
    const rows = this.db.prepare(this.totals.counts).all() as {
      state: ShardState;
      n: number;
    }[];
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  /** True while a shard is queued or leased; an index probe. */
  hasOpenWork(): boolean {
    return this.db.prepare(`SELECT EXISTS (SELECT 1 FROM shards WHERE state IN ('queued', 'leased'))`).pluck().get() === 1;
  }

  /** How many shards are leased: read from the state index, so it costs the leases, not the queue. */
  leasedCount(): number {
    return this.db.prepare(`SELECT COUNT(*) FROM shards WHERE state = 'leased'`).pluck().get() as number;
  }

  /** The output shard names of the done shards: what the output directory may hold. */
  doneOutputNames(): Set<string> {
    const names = this.db.prepare(`SELECT output_shard FROM shards WHERE state = 'done' AND output_shard IS NOT NULL`).pluck().all() as string[];
    return new Set(names);
  }

  /** Sums over done shards, for the dashboard and `cah status`: one row of shard_totals. */
  doneTotals(): ShardSampleCounts {
    return this.db.prepare(this.totals.done).get() as ShardSampleCounts;
  }

  /** Gives the oldest queued shard to `owner` with a fresh fencing token, or null when none is queued. */
  lease(owner: string, leaseMs: number, now: number = Date.now()): Lease | null {
    return withoutSync(this.db, this.db.transaction((): Lease | null => {
      const next = this.db
        .prepare(`SELECT id, source, attempts, fencing_token AS previous FROM shards WHERE state = 'queued' AND not_before <= ? ORDER BY id LIMIT 1`)
        .get(now) as { id: number; source: string; attempts: number; previous: number } | undefined;
      if (!next) return null;
      let token = randomFencingToken();
      while (token === next.previous) token = randomFencingToken();
      const expires = now + leaseMs;
      this.db
        .prepare(
          `UPDATE shards SET state = 'leased', lease_owner = ?, lease_expires_at = ?, fencing_token = ?, leased_at = ?,
             attempts = attempts + 1, updated_at = ? WHERE id = ?`,
        )
        .run(owner, expires, token, now, now, next.id);
      return { shardId: next.id, source: next.source, fencingToken: token, attempt: next.attempts + 1 };
    }));
  }

  /** True while the lease identified by the token is the shard's current one (and, when given, `owner`'s). */
  holds(shardId: number, fencingToken: number, owner?: string): boolean {
    const row = this.db
      .prepare(`SELECT lease_owner AS owner FROM shards WHERE id = ? AND state = 'leased' AND fencing_token = ?`)
      .get(shardId, fencingToken) as { owner: string | null } | undefined;
    return row !== undefined && (owner === undefined || row.owner === owner);
  }

  /**
   * A heartbeat extends the leases the owner reports (and still holds), only those: a lease the
   * worker stopped reporting must be able to expire. Returns the shard ids renewed.
   */
  renew(owner: string, reported: readonly { shardId: number; fencingToken: number }[], leaseMs: number, now: number = Date.now()): number[] {
    const update = this.db.prepare(
      `UPDATE shards SET lease_expires_at = ?, updated_at = ?
       WHERE id = ? AND state = 'leased' AND lease_owner = ? AND fencing_token = ? RETURNING id`,
    );
    return withoutSync(
      this.db,
      this.db.transaction(() =>
        reported.flatMap((r) => (update.all(now + leaseMs, now, r.shardId, owner, r.fencingToken) as { id: number }[]).map((row) => row.id)),
      ),
    );
  }

  /** The leases `owner` holds. */
  leasesOf(owner: string): HeldLease[] {
    return this.db
      .prepare(
        `SELECT id AS shardId, fencing_token AS fencingToken, lease_owner AS owner, leased_at AS leasedAt
         FROM shards WHERE state = 'leased' AND lease_owner = ?`,
      )
      .all(owner) as HeldLease[];
  }

  /** Leases past their expiry, or granted longer ago than `maxAgeMs` (a worker that never finishes). */
  overdue(maxAgeMs: number, now: number = Date.now()): (HeldLease & { reason: string })[] {
    const rows = this.db
      .prepare(
        `SELECT id AS shardId, fencing_token AS fencingToken, lease_owner AS owner, leased_at AS leasedAt,
           lease_expires_at AS expiresAt
         FROM shards WHERE state = 'leased' AND (lease_expires_at < ? OR leased_at < ?)`,
      )
      .all(now, now - maxAgeMs) as (HeldLease & { expiresAt: number | null })[];
    return rows.map(({ expiresAt, ...lease }) => ({
      ...lease,
      reason: expiresAt !== null && expiresAt < now ? 'lease expired' : `lease older than the maximum lease age (${Math.round(maxAgeMs / 1000)} s)`,
    }));
  }

  /**
   * Marks the shard done if the token still holds the lease. Done shards are never leased again.
   * Returns false for a stale token (nothing changes).
   */
  complete(shardId: number, fencingToken: number, result: ShardResultCounts, now: number = Date.now()): boolean {
    const info = this.db
      .prepare(COMPLETE_SQL)
      .run(now, now, result.outputShard, ...COUNTS.map(([name]) => result[name]), shardId, fencingToken);
    return info.changes === 1;
  }

  /**
   * Takes the lease back. A failure (the worker reported one, or its actor died) counts towards
   * maxRetries; once reached the shard is failed with this error. A return that is not the shard's
   * fault (the coordinator restarted, the worker drained) requeues it without counting.
   */
  returnLease(
    shardId: number,
    fencingToken: number | null,
    error: string,
    opts: { countsAsFailure: boolean; maxRetries: number; retryBackoffMs?: number },
    now: number = Date.now(),
  ): ReturnedLease | null {
    return this.db.transaction((): ReturnedLease | null => {
      const row = this.db
        .prepare(`SELECT lease_owner AS owner, failures, fencing_token AS token FROM shards WHERE id = ? AND state = 'leased'`)
        .get(shardId) as { owner: string | null; failures: number; token: number } | undefined;
      if (!row || (fencingToken !== null && row.token !== fencingToken)) return null;
      const failures = row.failures + (opts.countsAsFailure ? 1 : 0);
      const nowState: ShardState = opts.countsAsFailure && failures >= opts.maxRetries ? 'failed' : 'queued';
      const delay = opts.countsAsFailure ? retryDelayMs(opts.retryBackoffMs ?? 0, failures) : 0;
      const notBefore = delay > 0 ? now + delay : 0;
      this.db
        .prepare(
          `UPDATE shards SET state = ?, failures = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL,
             leased_at = NULL, not_before = ?, updated_at = ? WHERE id = ?`,
        )
        .run(nowState, failures, error, notBefore, now, shardId);
      return { shardId, owner: row.owner, nowState };
    })();
  }

  /**
   * At coordinator start: the samples streamed for leased shards lived in the previous process and
   * are gone, so every leased shard goes back to the queue (not counted as a failure). The fencing
   * token of the next lease differs, so the old workers' calls for them are refused.
   */
  requeueAllLeased(now: number = Date.now()): number {
    return this.db
      .prepare(
        `UPDATE shards SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, leased_at = NULL,
           error = 'coordinator restarted while leased', updated_at = ? WHERE state = 'leased'`,
      )
      .run(now).changes;
  }

  /** Puts failed shards back in the queue with a fresh retry budget (`cah shards retry`). */
  retryFailed(now: number = Date.now()): number {
    return this.db
      .prepare(`UPDATE shards SET state = 'queued', failures = 0, not_before = 0, updated_at = ? WHERE state = 'failed'`)
      .run(now).changes;
  }
}
