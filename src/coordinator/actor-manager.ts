import type { ActorKind, ActorRow, ActorTable } from '../store/actors.js';

/**
 * The one owner of actor state, as Ray's GcsActorManager: every transition of an actor record
 * (src/store/actors.ts has the diagram) goes through here, whichever supervisor saw it — the
 * gRPC handlers (register, heartbeat), heartbeat supervision, the local worker pool, the swarm
 * supervisor. Nothing else calls the table's mutators (tests/actor-owner.test.ts checks).
 */
export class ActorManager {
  constructor(private readonly table: ActorTable) {}

  get(id: string): ActorRow | undefined {
    return this.table.get(id);
  }

  list(): ActorRow[] {
    return this.table.list();
  }

  sessionOf(id: string): string | null {
    return this.table.sessionOf(id);
  }

  isAlive(id: string): boolean {
    return this.table.get(id)?.state === 'ALIVE';
  }

  /** ALIVE actors silent since `cutoff`: heartbeat supervision declares them DEAD. */
  silentSince(cutoff: number): ActorRow[] {
    return this.table.silentSince(cutoff);
  }

  /** At coordinator start: every actor of the previous run is DEAD until it registers again. */
  forgetPreviousRun(cause: string): number {
    return this.table.markAllDead(cause);
  }

  /** A supervisor is about to start this actor (a local process, a swarm server): PENDING_CREATION. */
  expect(id: string, kind: ActorKind, host: string): void {
    this.table.expect(id, kind, host);
  }

  /** The actor's process registered: ALIVE, bound to its session. */
  register(id: string, info: { kind: ActorKind; host: string; pid: number; version: string; session: string }): void {
    this.table.register(id, info);
  }

  heartbeat(id: string, progress: { currentShardId: number | null; candidates: number; downloaded: number }): boolean {
    return this.table.heartbeat(id, progress);
  }

  /** The actor now works on this shard (a lease was granted). */
  leased(id: string, shardId: number): void {
    this.table.setCurrentShard(id, shardId);
  }

  /** A lease of this shard came back (done, failed, returned): the actor no longer works on it. */
  released(id: string, shardId: number): void {
    this.table.clearCurrentShard(id, shardId);
  }

  /** The actor died: RESTARTING when its supervisor starts it again, else DEAD, with the death cause. */
  died(id: string, cause: string, restarting: boolean): void {
    if (restarting) this.table.markRestarting(id, cause);
    else this.table.markDead(id, cause);
  }

  /** Forgets DEAD actors beyond the `keep` most recently seen. */
  prune(keep: number): void {
    this.table.pruneDead(keep);
  }
}
