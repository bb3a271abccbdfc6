import type { HistogramData } from '../filter/histogram.js';
import type { ActorState } from '../store/actors.js';
import type { ShardSampleCounts } from '../store/shards.js';

/** How an actor is shown: its state, or EXITED once the run it served has ended. */
export type ActorView = ActorState | 'EXITED';

/**
 * Samples by outcome. One definition of "kept" everywhere: a downloaded pair the filter passed
 * (in finished or running shards); `written` counts the kept pairs of finished (committed) shards.
 */
export type SampleCounts = Pick<ShardSampleCounts, 'duplicates' | 'downloaded' | 'failed' | 'filteredOut' | 'kept'> & {
  /** Candidates extracted from the sources, duplicates included (the store counts the new ones). */
  extracted: number;
};

/** The shard an actor works on, from its heartbeats (extraction, downloads) and the filter (outcome). */
export interface ActorShardProgress {
  shardId: number;
  /** Share of the source read (0..1), null when its size is unknown. */
  fraction: number | null;
  samples: SampleCounts;
}

export interface ActorSnapshot {
  actorId: string;
  host: string;
  pid: number | null;
  state: ActorView;
  deathCause: string | null;
  currentShardId: number | null;
  shard: ActorShardProgress | null;
  candidatesPerSec: number;
  imagesPerSec: number;
  lastHeartbeatMs: number | null;
  restarts: number;
}

export interface ShardCounts {
  queued: number;
  leased: number;
  done: number;
  failed: number;
  total: number;
}

export interface ThroughputPoint {
  atMs: number;
  candidatesPerSec: number;
  downloadedPerSec: number;
  keptPerSec: number;
  mbInPerSec: number;
}

export interface FilterSnapshot {
  name: string;
  provider: string;
  batchSize: number;
  imagesPerSec: number;
  queueDepth: number;
  queueCapacity: number;
  /** Fraction of the last interval the filter spent waiting for input (0..1). */
  idleFraction: number;
  verdict: 'filter-bound' | 'workers-bound' | 'balanced' | 'idle' | 'no-workers' | 'paused' | 'draining' | 'done';
}

export interface ErrorCount {
  message: string;
  count: number;
}

export interface OutputSnapshot {
  path: string;
  shardsWritten: number;
  /** Kept pairs in finished shards (on disk). */
  pairsWritten: number;
  bytes: number;
  /** The swarm's price and what the run got for it, when a priced swarm is recorded. */
  cost?: { hourlyGross: number; keptPerEuro: number | null };
}

/**
 * Everything the dashboard, the periodic JSON log line, `cah status` and /metrics show: one plain
 * object the coordinator builds every tick (and `cah status` builds from the SQLite file).
 */
export interface CoordinatorSnapshot {
  runId: string;
  startedAtMs: number;
  nowMs: number;
  paused: boolean;
  draining: boolean;
  /** Set once the run is over: when, and why (done, drained, stopped). */
  ended: { atMs: number; reason: string } | null;
  actors: ActorSnapshot[];
  shards: ShardCounts;
  /** Share of the work done (0..1): finished shards plus the read share of running ones. */
  progress: number;
  /** Estimated milliseconds until all shards are done, null when unknown. */
  etaMs: number | null;
  totals: SampleCounts & Pick<ShardSampleCounts, 'bytesIn'>;
  /** Most recent last, at most ~120 points. */
  throughput: ThroughputPoint[];
  filter: FilterSnapshot;
  topErrors: ErrorCount[];
  output: OutputSnapshot;
  histograms: {
    /** Seconds from a shard's first sample to its commit. */
    shardSeconds: HistogramData;
    filterBatchSeconds: HistogramData;
    similarity: HistogramData;
  };
  /** Where to look: the log file, the /metrics address, how a worker attaches (set by `cah gpu`). */
  where?: RunLocations;
}

export interface RunLocations {
  /** The coordinator's log file; null when logs go to stderr. */
  logFile: string | null;
  metrics: string | null;
  /** A command line that attaches a worker to this coordinator. */
  attachWorker: string;
}
