import { Histogram, SHARD_SECONDS_BOUNDS } from '../filter/histogram.js';
import { errorGroup } from '../output/stats.js';
import type { FilterStage } from '../filter/stage.js';
import { bottleneckVerdict } from './verdict.js';
import type { Store } from '../store/state-file.js';
import type { ShardProgress } from '../wire/contract.js';
import type { ShardAttempt } from './shard-attempt.js';
import type { ActorShardProgress, ActorSnapshot, CoordinatorSnapshot, ThroughputPoint } from './snapshot.js';

const MAX_POINTS = 120;
/** Throughput rates are averaged over this window: heartbeats come every ~2 s, ticks every second. */
const RATE_WINDOW_MS = 5_000;
/** The ETA follows the progress made over this window. */
const ETA_WINDOW_MS = 60_000;
/** Progress over less than this is too little to extrapolate. */
const ETA_MIN_SPAN_MS = 3_000;
/** A running shard counts at most this share done until it is committed. */
const RUNNING_SHARD_CAP = 0.99;

/** What the snapshot reads of the filter stage (`cah status` passes an idle view of it). */
export type FilterStageView = Pick<FilterStage, 'filterName' | 'provider' | 'queueDepth' | 'capacity' | 'stats'>;

type Totals = CoordinatorSnapshot['totals'];

interface ActorRate {
  lastAt: number;
  lastCandidates: number;
  lastDownloaded: number;
  candidatesPerSec: number;
  imagesPerSec: number;
}

interface Mark {
  at: number;
  totals: Totals;
  progress: number;
}

/** A worker that left because its work was done (`cah worker --exit-when-drained`) did not die. */
function isCleanExit(state: string, cause: string | null): boolean {
  return state === 'DEAD' && cause !== null && cause.startsWith('exited:');
}

function emptyTotals(): Totals {
  return { extracted: 0, duplicates: 0, downloaded: 0, failed: 0, filteredOut: 0, kept: 0, bytesIn: 0 };
}

/**
 * Share of a running shard done: the share of its source read, times the share of the candidates
 * read so far that were downloaded or failed (exact once the whole source is read). Null when the
 * source's size is unknown.
 */
function sourceFraction(p: ShardProgress): number | null {
  const total = p.sourceBytesTotal;
  if (total <= 0) return null;
  const read = Math.min(1, Math.max(0, p.sourceBytesRead / total));
  const samplesDone = p.candidates > 0 ? Math.min(1, (p.downloaded + p.failed) / p.candidates) : 0;
  return Math.min(RUNNING_SHARD_CAP, read * samplesDone);
}

/**
 * Turns the store, the live shard attempts and the workers' heartbeats into the one snapshot the
 * dashboard, the JSON status line and /metrics show. Rates are differences over a short window;
 * progress counts the read share of running shards, so it moves sample by sample.
 */
export class SnapshotBuilder {
  private readonly startedAtMs = Date.now();
  private readonly progress = new Map<string, ShardProgress[]>();
  private readonly actorRates = new Map<string, ActorRate>();
  private readonly points: ThroughputPoint[] = [];
  /** One mark per tick over the last ETA_WINDOW_MS (bounded by the tick rate). */
  private marks: Mark[] = [];
  private shardDurationsMs: number[] = [];
  private readonly shardSeconds = new Histogram(SHARD_SECONDS_BOUNDS);
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
    this.shardSeconds.observe((Date.now() - attempt.startedAtMs) / 1000);
    if (this.shardDurationsMs.length > 50) this.shardDurationsMs = this.shardDurationsMs.slice(-50);
    const shards = this.progress.get(attempt.actorId);
    if (shards) this.progress.set(attempt.actorId, shards.filter((s) => s.shardId !== attempt.shardId));
  }

  /** Called once a second: appends a throughput point (rates over the last few seconds). */
  tick(): void {
    const now = Date.now();
    const totals = this.totals();
    const mark: Mark = { at: now, totals, progress: this.overallProgress(this.store.shards.counts()) };
    this.marks.push(mark);
    this.marks = this.marks.filter((m) => now - m.at <= ETA_WINDOW_MS);
    const base = this.marks.find((m) => now - m.at <= RATE_WINDOW_MS && m !== mark) ?? this.marks[this.marks.length - 2];
    if (base) {
      const secs = Math.max(0.001, (now - base.at) / 1000);
      const rate = (k: keyof Totals): number => Math.max(0, totals[k] - base.totals[k]) / secs;
      this.points.push({
        atMs: now,
        candidatesPerSec: rate('extracted'),
        downloadedPerSec: rate('downloaded'),
        keptPerSec: rate('kept'),
        mbInPerSec: rate('bytesIn') / 1e6,
      });
      if (this.points.length > MAX_POINTS) this.points.shift();
    }
  }

  build(flags: { paused: boolean; draining: boolean }): CoordinatorSnapshot {
    const counts = this.store.shards.counts();
    const total = counts.queued + counts.leased + counts.done + counts.failed;
    const run = this.store.runs.latest();
    const ended = run && run.id === this.runId && run.endedAt !== null ? { atMs: run.endedAt, reason: run.exitReason ?? 'ended' } : null;
    const perActor = this.actorShards();
    const rows = this.store.actors.list();
    // Progress of actors that are no longer ALIVE (pruned, dead, re-registered under new ids) is forgotten.
    const alive = new Set(rows.filter((a) => a.state === 'ALIVE').map((a) => a.id));
    for (const id of this.progress.keys()) if (!alive.has(id)) this.progress.delete(id);
    for (const id of this.actorRates.keys()) if (!alive.has(id)) this.actorRates.delete(id);
    const actors: ActorSnapshot[] = rows.map((a) => {
      const rate = this.actorRates.get(a.id);
      const alive = a.state === 'ALIVE' && !ended;
      return {
        actorId: a.id,
        host: a.host,
        pid: a.pid,
        state: (ended && a.state !== 'DEAD') || isCleanExit(a.state, a.deathCause) ? 'EXITED' : a.state,
        deathCause: a.deathCause,
        currentShardId: alive ? a.currentShardId : null,
        shard: alive ? (perActor.get(a.id) ?? null) : null,
        candidatesPerSec: alive ? (rate?.candidatesPerSec ?? 0) : 0,
        imagesPerSec: alive ? (rate?.imagesPerSec ?? 0) : 0,
        lastHeartbeatMs: a.lastHeartbeat,
        restarts: a.restarts,
      };
    });
    const stats = this.filter.stats();
    const aliveActors = actors.filter((a) => a.state === 'ALIVE').length;
    const progress = this.overallProgress(counts);
    const done = this.store.shards.doneTotals();
    const verdict = ended
      ? 'done'
      : flags.draining
        ? 'draining'
        : flags.paused
          ? 'paused'
          : aliveActors === 0 && counts.queued + counts.leased > 0
            ? 'no-workers'
            : bottleneckVerdict(this.filter.queueDepth, this.filter.capacity, stats.idleFraction);
    return {
      runId: this.runId,
      startedAtMs: this.startedAtMs,
      nowMs: Date.now(),
      paused: flags.paused,
      draining: flags.draining,
      ended,
      actors,
      shards: { ...counts, total },
      progress,
      etaMs: this.eta(counts, progress, aliveActors),
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
        verdict,
      },
      topErrors: this.topErrors(),
      histograms: { shardSeconds: this.shardSeconds.data(), filterBatchSeconds: stats.batchSeconds, similarity: stats.similarity },
      output: { path: this.outDir, shardsWritten: counts.done, pairsWritten: done.kept, bytes: done.outputBytes },
    };
  }

  /** Finished shards plus the read share of running ones, over all shards. */
  private overallProgress(counts: { queued: number; leased: number; done: number; failed: number }): number {
    const total = counts.queued + counts.leased + counts.done + counts.failed;
    if (total === 0) return 0;
    let running = 0;
    for (const shards of this.progress.values()) for (const s of shards) running += sourceFraction(s) ?? 0;
    return Math.min(1, (counts.done + counts.failed + Math.min(running, counts.leased)) / total);
  }

  /**
   * Remaining work over the progress made in the last minute; counts down between heartbeats. Without
   * progress measured yet (source sizes unknown), remaining shards times the mean shard duration.
   */
  private eta(counts: { queued: number; leased: number }, progress: number, aliveActors: number): number | null {
    if (counts.queued + counts.leased === 0) return 0;
    const now = Date.now();
    const first = this.marks[0];
    // Progress moves at heartbeats; between them the ETA counts down from the last move.
    let movedAt = now;
    for (let i = this.marks.length - 1; i >= 0 && this.marks[i]!.progress === progress; i--) movedAt = this.marks[i]!.at;
    if (first && movedAt - first.at >= ETA_MIN_SPAN_MS && progress > first.progress) {
      const perMs = (progress - first.progress) / (movedAt - first.at);
      return Math.max(0, (1 - progress) / perMs - (now - movedAt));
    }
    if (this.shardDurationsMs.length === 0 || aliveActors === 0) return null;
    const meanShardMs = this.shardDurationsMs.reduce((a, b) => a + b, 0) / this.shardDurationsMs.length;
    return ((counts.queued + counts.leased) * meanShardMs) / aliveActors;
  }

  /** Each actor's running shard: extraction and downloads from its heartbeat, outcome from the filter. */
  private actorShards(): Map<string, ActorShardProgress> {
    const outcome = new Map<number, { kept: number; filteredOut: number }>();
    for (const attempt of this.liveAttempts()) outcome.set(attempt.shardId, attempt.counts);
    const out = new Map<string, ActorShardProgress>();
    for (const [actorId, shards] of this.progress) {
      const s = shards[0];
      if (!s) continue;
      const filtered = outcome.get(s.shardId);
      out.set(actorId, {
        shardId: s.shardId,
        fraction: sourceFraction(s),
        samples: {
          extracted: s.candidates + s.duplicates,
          duplicates: s.duplicates,
          downloaded: s.downloaded,
          failed: s.failed,
          filteredOut: filtered?.filteredOut ?? 0,
          kept: filtered?.kept ?? 0,
        },
      });
    }
    return out;
  }

  private topErrors(): { message: string; count: number }[] {
    // Grouped as in _stats.json: one line per kind of failure, not per byte count or address.
    const merged = new Map<string, number>();
    const add = (message: string, count: number): void => {
      const group = errorGroup(message);
      merged.set(group, (merged.get(group) ?? 0) + count);
    };
    for (const e of this.store.runs.topErrors(50)) add(e.message, e.count);
    for (const attempt of this.liveAttempts()) for (const [message, count] of attempt.errors) add(message, count);
    return [...merged.entries()]
      .map(([message, count]) => ({ message, count }))
      .sort((a, b) => b.count - a.count || a.message.localeCompare(b.message))
      .slice(0, 10);
  }

  private totals(): Totals {
    const t = this.store.shards.doneTotals();
    const totals = emptyTotals();
    totals.extracted = t.candidates;
    totals.duplicates = t.duplicates;
    totals.downloaded = t.downloaded;
    totals.failed = t.failed;
    totals.filteredOut = t.filteredOut;
    totals.kept = t.kept;
    totals.bytesIn = t.bytesIn;
    for (const shards of this.progress.values()) {
      for (const s of shards) {
        totals.extracted += s.candidates + s.duplicates;
        totals.duplicates += s.duplicates;
      }
    }
    for (const attempt of this.liveAttempts()) {
      totals.downloaded += attempt.counts.downloaded;
      totals.filteredOut += attempt.counts.filteredOut;
      totals.kept += attempt.counts.kept;
      totals.failed += attempt.counts.failed;
      totals.bytesIn += attempt.counts.bytesIn;
    }
    return totals;
  }
}
