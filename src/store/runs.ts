import type { Db } from './db.js';

export interface RunRow {
  id: string;
  startedAt: number;
  endedAt: number | null;
  outDir: string;
  settingsJson: string;
  exitReason: string | null;
}

/** One row per `cah gpu` invocation on this state file; plus the cumulative error-message counts. */
export class RunTable {
  constructor(private readonly db: Db) {}

  start(id: string, outDir: string, settings: object, now: number = Date.now()): void {
    this.db
      .prepare(`INSERT INTO runs (id, started_at, out_dir, settings_json) VALUES (?, ?, ?, ?)`)
      .run(id, now, outDir, JSON.stringify(settings));
  }

  end(id: string, exitReason: string, now: number = Date.now()): void {
    this.db.prepare(`UPDATE runs SET ended_at = ?, exit_reason = ? WHERE id = ?`).run(now, exitReason, id);
  }

  latest(): RunRow | undefined {
    return this.db
      .prepare(
        `SELECT id, started_at AS startedAt, ended_at AS endedAt, out_dir AS outDir, settings_json AS settingsJson,
           exit_reason AS exitReason FROM runs ORDER BY started_at DESC LIMIT 1`,
      )
      .get() as RunRow | undefined;
  }

  addErrors(counts: ReadonlyMap<string, number>): void {
    const upsert = this.db.prepare(
      `INSERT INTO error_counts (message, count) VALUES (?, ?) ON CONFLICT (message) DO UPDATE SET count = count + excluded.count`,
    );
    // A done shard's error counts are never recounted: the coordinator adds them in the done-mark's durable commit.
    this.db.transaction(() => {
      for (const [message, count] of counts) upsert.run(message, count);
    })();
  }

  topErrors(limit: number): { message: string; count: number }[] {
    return this.db
      .prepare(`SELECT message, count FROM error_counts ORDER BY count DESC, message LIMIT ?`)
      .all(limit) as { message: string; count: number }[];
  }
}
