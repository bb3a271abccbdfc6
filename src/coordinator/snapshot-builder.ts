import type { FilterStage } from '../filter/stage.js';
import { bottleneckVerdict } from '../dashboard/verdict.js';
import type { Store } from '../store/store.js';
import type { ShardProgress } from '../wire/contract.js';
import type { ShardAttempt } from './shard-attempt.js';
import type { ActorSnapshot, CoordinatorSnapshot, ThroughputPoint } from './snapshot.js';

const MAX_POINTS = 120;

/** What the snapshot reads of the filter stage (`cah status` passes an idle view of it). */
export type FilterStageView = Pick<FilterStage, 'filterName' | 'provider' | 'queueDepth' | 'capacity' | 'stats'>;

interface Totals {
  candidates: number;
  downloaded: number;
  kept: number;
  failed: number;
  bytesIn: number;
}

interface ActorRate {
  lastAt: number;
  lastCandidates: number;
  lastDownloaded: number;
  candidatesPerSec: number;
  imagesPerSec: number;
}

/**
 * Turns the store, the live shard attempts and the workers' heartbeats into the one snapshot the
 * dashboard, the JSON status line and /metrics show. Rates are differences between ticks.
 */
export class SnapshotBuilder {
  private readonly startedAtMs = Date.now();
  private readonly progress = new Map<string, ShardProgress[]>();
  private readonly actorRates = new Map<string, ActorRate>();
  private readonly points: ThroughputPoint[] = [];
  private last: { at: number; totals: Totals } | null = null;
  private shardDurationsMs: number[] = [];
  private liveAttempts: () => Iterable<ShardAttempt> = () => [];

  constructor(
    private readonly store: Store,
    private readonly filter: FilterStageView,
    private readonly outDir: string,
    private readonly runId: string,
  ) {}

  trackAttempts(live: () => Iterable<ShardAttempt>): void {
    this.liveAttempts = live;
  }

  recordProgress(actorId: string, shards: ShardProgress[]): void {
    this.progress.set(actorId, shards);
    const now = Date.now();
    const candidates = shards.reduce((n, s) => n + s.candidates, 0);
    const downloaded = shards.reduce((n, s) => n + s.downloaded, 0);
    const rate = this.actorRates.get(actorId);
    if (rate && now > rate.lastAt && candidates >= rate.lastCandidates) {
      const secs = (now - rate.lastAt) / 1000;
      rate.candidatesPerSec = (candidates - rate.lastCandidates) / secs;
      rate.imagesPerSec = Math.max(0, downloaded - rate.lastDownloaded) / secs;
    }
    this.actorRates.set(actorId, {
      lastAt: now,
      lastCandidates: candidates,
      lastDownloaded: downloaded,
      candidatesPerSec: rate?.candidatesPerSec ?? 0,
      imagesPerSec: rate?.imagesPerSec ?? 0,
    });
  }

  recordShardDone(attempt: ShardAttempt): void {
    this.shardDurationsMs.push(Date.now() - attempt.startedAtMs);
    if (this.shardDurationsMs.length > 50) this.shardDurationsMs = this.shardDurationsMs.slice(-50);
    const shards = this.progress.get(attempt.actorId);
    if (shards) this.progress.set(attempt.actorId, shards.filter((s) => s.shardId !== attempt.shardId));
  }

  /** Called once a second: appends a throughput point. */
  tick(): void {
    const now = Date.now();
    const totals = this.totals();
    if (this.last) {
      const secs = Math.max(0.001, (now - this.last.at) / 1000);
      const rate = (k: keyof Totals): number => Math.max(0, totals[k] - this.last!.totals[k]) / secs;
      this.points.push({
        atMs: now,
        candidatesPerSec: rate('candidates'),
        downloadedPerSec: rate('downloaded'),
        keptPerSec: rate('kept'),
        mbInPerSec: rate('bytesIn') / 1e6,
      });
      if (this.points.length > MAX_POINTS) this.points.shift();
    }
    this.last = { at: now, totals };
  }

  build(flags: { paused: boolean; draining: boolean }): CoordinatorSnapshot {
    const counts = this.store.shards.counts();
    const total = counts.queued + counts.leased + counts.done + counts.failed;
    const actors: ActorSnapshot[] = this.store.actors.list().map((a) => {
      const rate = this.actorRates.get(a.id);
      const alive = a.state === 'ALIVE';
      return {
        actorId: a.id,
        host: a.host,
        pid: a.pid,
        state: a.state,
        deathCause: a.deathCause,
        currentShardId: a.currentShardId,
        candidatesPerSec: alive ? (rate?.candidatesPerSec ?? 0) : 0,
        imagesPerSec: alive ? (rate?.imagesPerSec ?? 0) : 0,
        lastHeartbeatMs: a.lastHeartbeat,
        restarts: a.restarts,
      };
    });
    const stats = this.filter.stats();
    const aliveActors = actors.filter((a) => a.state === 'ALIVE').length;
    const meanShardMs =
      this.shardDurationsMs.length > 0
        ? this.shardDurationsMs.reduce((a, b) => a + b, 0) / this.shardDurationsMs.length
        : null;
    const remaining = counts.queued + counts.leased;
    const etaMs =
      remaining === 0 ? 0 : meanShardMs !== null && aliveActors > 0 ? (remaining * meanShardMs) / aliveActors : null;
    const done = this.store.shards.doneTotals();
    return {
      runId: this.runId,
      startedAtMs: this.startedAtMs,
      nowMs: Date.now(),
      paused: flags.paused,
      draining: flags.draining,
      actors,
      shards: { ...counts, total },
      etaMs,
      totals: this.totals(),
      throughput: [...this.points],
      filter: {
        name: this.filter.filterName,
        provider: this.filter.provider,
        batchSize: stats.lastBatchSize,
        imagesPerSec: stats.imagesPerSec,
        queueDepth: this.filter.queueDepth,
        queueCapacity: this.filter.capacity,
        idleFraction: stats.idleFraction,
        verdict: bottleneckVerdict(this.filter.queueDepth, this.filter.capacity, stats.idleFraction),
      },
      topErrors: this.topErrors(),
      output: { path: this.outDir, shardsWritten: counts.done, pairsKept: done.kept, bytes: done.outputBytes },
    };
  }

  private topErrors(): { message: string; count: number }[] {
    const merged = new Map<string, number>();
    for (const e of this.store.runs.topErrors(20)) merged.set(e.message, e.count);
    for (const attempt of this.liveAttempts()) {
      for (const [message, count] of attempt.errors) merged.set(message, (merged.get(message) ?? 0) + count);
    }
    return [...merged.entries()]
      .map(([message, count]) => ({ message, count }))
      .sort((a, b) => b.count - a.count || a.message.localeCompare(b.message))
      .slice(0, 10);
  }

  private totals(): Totals {
    const t = this.store.shards.doneTotals();
    const totals: Totals = { candidates: t.candidates, downloaded: t.downloaded, kept: t.kept, failed: t.failed, bytesIn: t.bytesIn };
    for (const shards of this.progress.values()) {
      for (const s of shards) totals.candidates += s.candidates;
    }
    for (const attempt of this.liveAttempts()) {
      totals.downloaded += attempt.counts.downloaded;
      totals.kept += attempt.counts.kept;
      totals.failed += attempt.counts.failed;
      totals.bytesIn += attempt.counts.bytesIn;
    }
    return totals;
  }
}
