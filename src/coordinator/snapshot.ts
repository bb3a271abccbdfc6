/**
 * Everything the dashboard, the periodic JSON log line, `cah status` and /metrics show: one plain
 * object the coordinator builds every tick (and `cah status` builds from the SQLite file).
 */
export type ActorState = 'PENDING_CREATION' | 'ALIVE' | 'RESTARTING' | 'DEAD';

export interface ActorSnapshot {
  actorId: string;
  host: string;
  pid: number | null;
  state: ActorState;
  deathCause: string | null;
  currentShardId: number | null;
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
  verdict: 'filter-bound' | 'workers-bound' | 'balanced' | 'idle';
}

export interface ErrorCount {
  message: string;
  count: number;
}

export interface OutputSnapshot {
  path: string;
  shardsWritten: number;
  pairsKept: number;
  bytes: number;
  /** The swarm's price and what the run got for it, when a priced swarm is recorded. */
  cost?: { hourlyGross: number; keptPerEuro: number | null };
}

export interface CoordinatorSnapshot {
  runId: string;
  startedAtMs: number;
  nowMs: number;
  paused: boolean;
  draining: boolean;
  actors: ActorSnapshot[];
  shards: ShardCounts;
  /** Estimated milliseconds until all shards are done, null when unknown. */
  etaMs: number | null;
  totals: { candidates: number; downloaded: number; kept: number; failed: number; bytesIn: number };
  /** Most recent last, at most ~120 points. */
  throughput: ThroughputPoint[];
  filter: FilterSnapshot;
  topErrors: ErrorCount[];
  output: OutputSnapshot;
}
