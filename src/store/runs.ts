import type { Db } from './db.js';

export interface RunRow {
  id: string;
  startedAt: number;
  endedAt: number | null;
  outDir: string;
  settingsJson: string;
  exitReason: string | null;
}

/** The most error messages the state file counts separately (`cah status`, the dashboard's top errors). */
export const MAX_ERROR_KINDS = 1000;
/** What the messages past MAX_ERROR_KINDS count under (the table then holds one row more). */
export const OTHER_ERRORS = `other errors (past the first ${MAX_ERROR_KINDS} kinds)`;

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

  /**
   * Adds a done shard's error counts. The table keeps at most MAX_ERROR_KINDS messages: past them a
   * new message counts under OTHER_ERRORS, so workers (a hostile one sending a new message with
   * every sample) cannot grow it, and with it every snapshot's sort, without bound.
   */
  addErrors(counts: ReadonlyMap<string, number>): void {
    const bump = this.db.prepare(`UPDATE error_counts SET count = count + ? WHERE message = ?`);
    const insert = this.db.prepare(`INSERT INTO error_counts (message, count) VALUES (?, ?) ON CONFLICT (message) DO UPDATE SET count = count + excluded.count`);
    // A done shard's error counts are never recounted: the coordinator adds them in the done-mark's durable commit.
    this.db.transaction(() => {
      let kinds = this.db.prepare(`SELECT COUNT(*) FROM error_counts`).pluck().get() as number;
      for (const [message, count] of counts) {
        if (bump.run(count, message).changes > 0) continue;
        if (kinds < MAX_ERROR_KINDS) {
          insert.run(message, count);
          kinds++;
        } else {
          insert.run(OTHER_ERRORS, count);
        }
      }
    })();
  }

  topErrors(limit: number): { message: string; count: number }[] {
    return this.db
      .prepare(`SELECT message, count FROM error_counts ORDER BY count DESC, message LIMIT ?`)
      .all(limit) as { message: string; count: number }[];
  }
}
