import type { Db } from './db.js';

/**
 * Every change of a shard's state happens in this file:
 *   queued → leased (lease) → done (complete) | queued (lease returned, will retry) | failed (out of retries)
 * A lease carries a fencing token, fresh for every lease, so that a worker whose lease was taken
 * away (expired, actor declared dead, coordinator restarted) can no longer complete the shard.
 */
export type ShardState = 'queued' | 'leased' | 'done' | 'failed';

export interface ShardRow {
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
  candidates: number;
  duplicates: number;
  downloaded: number;
  failed: number;
  kept: number;
  filteredOut: number;
  bytesIn: number;
  outputBytes: number;
}

export interface Lease {
  shardId: number;
  source: string;
  fencingToken: number;
  leaseExpiresAt: number;
  attempt: number;
}

export interface ShardResultCounts {
  candidates: number;
  duplicates: number;
  downloaded: number;
  failed: number;
  kept: number;
  filteredOut: number;
  bytesIn: number;
  outputBytes: number;
  outputShard: string;
}

export interface DoneTotals {
  candidates: number;
  duplicates: number;
  downloaded: number;
  kept: number;
  failed: number;
  filteredOut: number;
  bytesIn: number;
  outputBytes: number;
}

export interface ReturnedLease {
  shardId: number;
  owner: string | null;
  nowState: ShardState;
}

const COLUMNS = `id, source, state, attempts, failures, lease_owner AS leaseOwner, lease_expires_at AS leaseExpiresAt,
  fencing_token AS fencingToken, error, added_at AS addedAt, updated_at AS updatedAt, done_at AS doneAt,
  output_shard AS outputShard, candidates, duplicates, downloaded, failed, kept, filtered_out AS filteredOut,
  bytes_in AS bytesIn, output_bytes AS outputBytes`;

export class ShardTable {
  constructor(private readonly db: Db) {}

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

  counts(): Record<ShardState, number> {
    const counts: Record<ShardState, number> = { queued: 0, leased: 0, done: 0, failed: 0 };
    const rows = this.db.prepare(`SELECT state, COUNT(*) AS n FROM shards GROUP BY state`).all() as {
      state: ShardState;
      n: number;
    }[];
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  /** Sums over done shards, for the dashboard and `cah status`. */
  doneTotals(): DoneTotals {
    return this.db
      .prepare(
        `SELECT COALESCE(SUM(candidates),0) AS candidates, COALESCE(SUM(duplicates),0) AS duplicates,
           COALESCE(SUM(downloaded),0) AS downloaded, COALESCE(SUM(kept),0) AS kept, COALESCE(SUM(failed),0) AS failed,
           COALESCE(SUM(filtered_out),0) AS filteredOut, COALESCE(SUM(bytes_in),0) AS bytesIn,
           COALESCE(SUM(output_bytes),0) AS outputBytes
         FROM shards WHERE state = 'done'`,
      )
      .get() as DoneTotals;
  }

  /** Gives the oldest queued shard to `owner` with a fresh fencing token, or null when none is queued. */
  lease(owner: string, leaseMs: number, now: number = Date.now()): Lease | null {
    return this.db.transaction((): Lease | null => {
      const next = this.db
        .prepare(`SELECT id, source, attempts FROM shards WHERE state = 'queued' ORDER BY id LIMIT 1`)
        .get() as { id: number; source: string; attempts: number } | undefined;
      if (!next) return null;
      const token = this.nextFencingToken();
      const expires = now + leaseMs;
      this.db
        .prepare(
          `UPDATE shards SET state = 'leased', lease_owner = ?, lease_expires_at = ?, fencing_token = ?,
             attempts = attempts + 1, updated_at = ? WHERE id = ?`,
        )
        .run(owner, expires, token, now, next.id);
      return { shardId: next.id, source: next.source, fencingToken: token, leaseExpiresAt: expires, attempt: next.attempts + 1 };
    })();
  }

  /** True while the lease identified by the token is the shard's current one. */
  holds(shardId: number, fencingToken: number): boolean {
    const row = this.db
      .prepare(`SELECT 1 FROM shards WHERE id = ? AND state = 'leased' AND fencing_token = ?`)
      .get(shardId, fencingToken);
    return row !== undefined;
  }

  /** Heartbeats extend every lease the owner holds. Returns the shard ids renewed. */
  renew(owner: string, leaseMs: number, now: number = Date.now()): number[] {
    const rows = this.db
      .prepare(
        `UPDATE shards SET lease_expires_at = ?, updated_at = ? WHERE state = 'leased' AND lease_owner = ? RETURNING id`,
      )
      .all(now + leaseMs, now, owner) as { id: number }[];
    return rows.map((r) => r.id);
  }

  leasedBy(owner: string): number[] {
    return (
      this.db.prepare(`SELECT id FROM shards WHERE state = 'leased' AND lease_owner = ?`).all(owner) as { id: number }[]
    ).map((r) => r.id);
  }

  /**
   * Marks the shard done if the token still holds the lease. Done shards are never leased again.
   * Returns false for a stale token (nothing changes).
   */
  complete(shardId: number, fencingToken: number, result: ShardResultCounts, now: number = Date.now()): boolean {
    const info = this.db
      .prepare(
        `UPDATE shards SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, error = NULL, done_at = ?,
           updated_at = ?, output_shard = ?, candidates = ?, duplicates = ?, downloaded = ?, failed = ?, kept = ?,
           filtered_out = ?, bytes_in = ?, output_bytes = ?
         WHERE id = ? AND state = 'leased' AND fencing_token = ?`,
      )
      .run(
        now,
        now,
        result.outputShard,
        result.candidates,
        result.duplicates,
        result.downloaded,
        result.failed,
        result.kept,
        result.filteredOut,
        result.bytesIn,
        result.outputBytes,
        shardId,
        fencingToken,
      );
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
    opts: { countsAsFailure: boolean; maxRetries: number },
    now: number = Date.now(),
  ): ReturnedLease | null {
    return this.db.transaction((): ReturnedLease | null => {
      const row = this.db
        .prepare(`SELECT lease_owner AS owner, failures, fencing_token AS token FROM shards WHERE id = ? AND state = 'leased'`)
        .get(shardId) as { owner: string | null; failures: number; token: number } | undefined;
      if (!row || (fencingToken !== null && row.token !== fencingToken)) return null;
      const failures = row.failures + (opts.countsAsFailure ? 1 : 0);
      const nowState: ShardState = opts.countsAsFailure && failures >= opts.maxRetries ? 'failed' : 'queued';
      this.db
        .prepare(
          `UPDATE shards SET state = ?, failures = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL,
             updated_at = ? WHERE id = ?`,
        )
        .run(nowState, failures, error, now, shardId);
      return { shardId, owner: row.owner, nowState };
    })();
  }

  /** Leases whose expiry has passed go back to the queue (counted as a failure of that attempt). */
  expireLeases(maxRetries: number, now: number = Date.now()): ReturnedLease[] {
    const expired = this.db
      .prepare(`SELECT id FROM shards WHERE state = 'leased' AND lease_expires_at < ?`)
      .all(now) as { id: number }[];
    const returned: ReturnedLease[] = [];
    for (const { id } of expired) {
      const r = this.returnLease(id, null, 'lease expired', { countsAsFailure: true, maxRetries }, now);
      if (r) returned.push(r);
    }
    return returned;
  }

  /**
   * At coordinator start: the samples streamed for leased shards lived in the previous process and
   * are gone, so every leased shard goes back to the queue (not counted as a failure). The fencing
   * token of the next lease differs, so the old workers' calls for them are refused.
   */
  requeueAllLeased(now: number = Date.now()): number {
    return this.db
      .prepare(
        `UPDATE shards SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL,
           error = 'coordinator restarted while leased', updated_at = ? WHERE state = 'leased'`,
      )
      .run(now).changes;
  }

  /** Puts failed shards back in the queue with a fresh retry budget (`cah shards retry`). */
  retryFailed(now: number = Date.now()): number {
    return this.db
      .prepare(`UPDATE shards SET state = 'queued', failures = 0, updated_at = ? WHERE state = 'failed'`)
      .run(now).changes;
  }

  private nextFencingToken(): number {
    const row = this.db
      .prepare(`UPDATE counters SET value = value + 1 WHERE name = 'fencing_token' RETURNING value`)
      .get() as { value: number };
    return row.value;
  }
}
