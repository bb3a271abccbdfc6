import { withoutSync, type Db } from './db.js';

/**
 * The run-wide set of candidate keys. A key belongs to the first shard that claimed it; a retry of
 * that shard claims the same keys again and gets them (so a shard redone after a crash loses
 * nothing), any other shard gets "duplicate".
 */
export class DedupTable {
  constructor(private readonly db: Db) {}

  /** Returns the keys owned by `shardId` after the claim, in input order. */
  claim(shardId: number, keys: readonly string[]): string[] {
    const insert = this.db.prepare(`INSERT OR IGNORE INTO dedup_keys (key, shard_id) VALUES (?, ?)`);
    const owner = this.db.prepare(`SELECT shard_id AS shardId FROM dedup_keys WHERE key = ?`).pluck();
    return withoutSync(this.db, this.db.transaction(() => {
      const owned: string[] = [];
      const seen = new Set<string>();
      for (const key of keys) {
        if (seen.has(key)) continue;
        seen.add(key);
        if (insert.run(key, shardId).changes === 1 || owner.get(key) === shardId) owned.push(key);
      }
      return owned;
    }));
  }

  /** A shard that failed for good gives its keys back, so other shards holding them are not deduped away. */
  release(shardId: number): number {
    return this.db.prepare(`DELETE FROM dedup_keys WHERE shard_id = ?`).run(shardId).changes;
  }

  count(): number {
    return this.db.prepare(`SELECT COUNT(*) FROM dedup_keys`).pluck().get() as number;
  }
}
