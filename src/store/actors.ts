import { withoutSync, type Db } from './db.js';

/**
 * Every change of an actor's state happens in this file, and only the coordinator's ActorManager
 * (src/coordinator/actor-manager.ts) asks for one, as Ray's GcsActorManager owns actor state:
 *
 *   PENDING_CREATION ──register──▶ ALIVE ──died, restarts left──▶ RESTARTING ──register──▶ ALIVE
 *                                    └──────died for good───────▶ DEAD
 *
 *   (none) | RESTARTING | DEAD → PENDING_CREATION   expect: a supervisor starts or replaces it (ALIVE stays ALIVE)
 *   any → ALIVE                                     register: its process called in; from RESTARTING or DEAD, one more restart
 *   ALIVE | DEAD → RESTARTING                       markRestarting: it died and its supervisor starts it again
 *   PENDING_CREATION | ALIVE | RESTARTING → DEAD    markDead: missed heartbeats, out of restarts, its server lost;
 *                                                   markAllDead: the coordinator restarted
 *   DEAD → (forgotten)                              pruneDead: beyond the DEAD actors kept for `cah status`
 */
export type ActorState = 'PENDING_CREATION' | 'ALIVE' | 'RESTARTING' | 'DEAD';

export type ActorKind = 'local' | 'remote' | 'swarm';

export interface ActorRow {
  id: string;
  kind: ActorKind;
  host: string;
  pid: number | null;
  version: string | null;
  state: ActorState;
  registeredAt: number;
  lastHeartbeat: number | null;
  deathCause: string | null;
  restarts: number;
  currentShardId: number | null;
  candidates: number;
  downloaded: number;
}

const COLUMNS = `id, kind, host, pid, version, state, registered_at AS registeredAt, last_heartbeat AS lastHeartbeat,
  death_cause AS deathCause, restarts, current_shard_id AS currentShardId, candidates, downloaded`;

/** Actor (worker) records, in Ray's vocabulary; the transitions are above. */
export class ActorTable {
  constructor(private readonly db: Db) {}

  /**
   * An actor the coordinator is about to start (a local process or a swarm server, new or
   * replaced): PENDING_CREATION until it registers, unless it is ALIVE already.
   */
  expect(id: string, kind: ActorKind, host: string, now: number = Date.now()): void {
    this.db
      .prepare(
        `INSERT INTO actors (id, kind, host, state, registered_at) VALUES (?, ?, ?, 'PENDING_CREATION', ?)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, host = excluded.host,
           state = CASE WHEN actors.state = 'ALIVE' THEN 'ALIVE' ELSE 'PENDING_CREATION' END,
           death_cause = CASE WHEN actors.state = 'ALIVE' THEN actors.death_cause ELSE NULL END`,
      )
      .run(id, kind, host, now);
  }

  /**
   * Register: the actor is ALIVE, bound to `session` (a digest of the secret its process sends on
   * every call). A re-registration after a death counts as a restart.
   */
  register(
    id: string,
    info: { kind: ActorKind; host: string; pid: number; version: string; session?: string },
    now: number = Date.now(),
  ): void {
    withoutSync(this.db, () => this.db
      .prepare(
        `INSERT INTO actors (id, kind, host, pid, version, state, registered_at, last_heartbeat, session)
         VALUES (@id, @kind, @host, @pid, @version, 'ALIVE', @now, @now, @session)
         ON CONFLICT (id) DO UPDATE SET host = @host, pid = @pid, version = @version, state = 'ALIVE',
           last_heartbeat = @now, death_cause = NULL, current_shard_id = NULL, session = @session,
           restarts = restarts + (CASE WHEN actors.state IN ('DEAD', 'RESTARTING') THEN 1 ELSE 0 END)`,
      )
      .run({ id, ...info, session: info.session ?? null, now }));
  }

  /** The session digest an actor registered with (null: none, or not known). */
  sessionOf(id: string): string | null {
    return (this.db.prepare(`SELECT session FROM actors WHERE id = ?`).pluck().get(id) as string | null | undefined) ?? null;
  }

  /** Clears the actor's current shard if it is this one (a lease of it came back). */
  clearCurrentShard(id: string, shardId: number): void {
    withoutSync(this.db, () => this.db.prepare(`UPDATE actors SET current_shard_id = NULL WHERE id = ? AND current_shard_id = ?`).run(id, shardId));
  }

  /** Forgets DEAD actors beyond the `keep` most recently seen: registrations must not grow the table without bound. */
  pruneDead(keep: number): number {
    return this.db
      .prepare(
        `DELETE FROM actors WHERE state = 'DEAD' AND id NOT IN (
           SELECT id FROM actors WHERE state = 'DEAD' ORDER BY COALESCE(last_heartbeat, registered_at) DESC LIMIT ?)`,
      )
      .run(keep).changes;
  }

  count(): number {
    return this.db.prepare(`SELECT COUNT(*) FROM actors`).pluck().get() as number;
  }

  heartbeat(
    id: string,
    progress: { currentShardId: number | null; candidates: number; downloaded: number },
    now: number = Date.now(),
  ): boolean {
    const info = withoutSync(this.db, () =>
      this.db
        .prepare(
          `UPDATE actors SET last_heartbeat = ?, current_shard_id = ?, candidates = ?, downloaded = ?
           WHERE id = ? AND state = 'ALIVE'`,
        )
        .run(now, progress.currentShardId, progress.candidates, progress.downloaded, id),
    );
    return info.changes === 1;
  }

  setCurrentShard(id: string, shardId: number | null): void {
    withoutSync(this.db, () => this.db.prepare(`UPDATE actors SET current_shard_id = ? WHERE id = ?`).run(shardId, id));
  }

  markRestarting(id: string, cause: string): void {
    this.db
      .prepare(`UPDATE actors SET state = 'RESTARTING', death_cause = ?, current_shard_id = NULL WHERE id = ?`)
      .run(cause, id);
  }

  markDead(id: string, cause: string): void {
    this.db
      .prepare(`UPDATE actors SET state = 'DEAD', death_cause = ?, current_shard_id = NULL WHERE id = ? AND state != 'DEAD'`)
      .run(cause, id);
  }

  /** ALIVE actors whose last heartbeat is older than the cutoff. */
  silentSince(cutoff: number): ActorRow[] {
    return this.db
      .prepare(`SELECT ${COLUMNS} FROM actors WHERE state = 'ALIVE' AND last_heartbeat < ?`)
      .all(cutoff) as ActorRow[];
  }

  get(id: string): ActorRow | undefined {
    return this.db.prepare(`SELECT ${COLUMNS} FROM actors WHERE id = ?`).get(id) as ActorRow | undefined;
  }

  list(): ActorRow[] {
    return this.db.prepare(`SELECT ${COLUMNS} FROM actors ORDER BY registered_at, id`).all() as ActorRow[];
  }

  /** At coordinator start every actor of the previous run is gone until it registers again. */
  markAllDead(cause: string): number {
    return this.db
      .prepare(`UPDATE actors SET state = 'DEAD', death_cause = ?, current_shard_id = NULL WHERE state != 'DEAD'`)
      .run(cause).changes;
  }
}
