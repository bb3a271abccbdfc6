import type { ActorSnapshot, CoordinatorSnapshot, ThroughputPoint } from '../../src/coordinator/snapshot.js';
import { BATCH_SECONDS_BOUNDS, Histogram, SHARD_SECONDS_BOUNDS, SIMILARITY_BOUNDS } from '../../src/filter/histogram.js';
import { bottleneckVerdict } from '../../src/coordinator/verdict.js';
import type { SnapshotSource } from '../../src/coordinator/snapshot-source.js';

export interface SampleOptions {
  /** Number of worker actors (default 12). */
  actors?: number;
  /** Advances the figures, one step per update, for benches and previews (default 0). */
  step?: number;
}

const START_MS = Date.UTC(2025, 10, 23, 21, 40, 12);

/**
 * A realistic, deterministic snapshot of a run in progress: for previews, tests and the dashboard
 * bench. Two actors are in trouble (one restarting, one dead), the filter queue runs full.
 */
export function sampleSnapshot(opts: SampleOptions = {}): CoordinatorSnapshot {
  const actorCount = opts.actors ?? 12;
  const step = opts.step ?? 0;
  const nowMs = START_MS + 5_025_000 + step * 100;
  const actors: ActorSnapshot[] = [];
  for (let i = 0; i < actorCount; i++) {
    const n = String(i + 1).padStart(2, '0');
    const wobble = Math.sin(i * 1.7 + step * 0.3);
    const base: ActorSnapshot = {
      actorId: `hz-cx22-${n}`,
      host: `116.203.${40 + (i % 50)}.${10 + i}`,
      pid: 4100 + i,
      state: 'ALIVE',
      deathCause: null,
      currentShardId: 1200 + i * 3 + Math.floor(step / 50),
      shard: {
        shardId: 1200 + i * 3 + Math.floor(step / 50),
        fraction: ((i * 0.17 + step * 0.002) % 1) * 0.99,
        samples: {
          extracted: 8000 + i * 611 + step * 40,
          duplicates: 120 + i * 7,
          downloaded: 1300 + i * 97 + step * 6,
          failed: 400 + i * 31 + step * 2,
          filteredOut: 500 + i * 37 + step * 2,
          kept: 390 + i * 29 + step * 2,
        },
      },
      candidatesPerSec: 410 + 60 * wobble,
      imagesPerSec: 58 + 9 * wobble,
      lastHeartbeatMs: nowMs - ((i * 700 + step * 100) % 5000),
      restarts: i % 7 === 3 ? 1 : 0,
    };
    if (i === 4) {
      actors.push({ ...base, state: 'RESTARTING', deathCause: 'exit code 137 (out of memory)', currentShardId: null, shard: null, candidatesPerSec: 0, imagesPerSec: 0, restarts: 2 });
    } else if (i === 9) {
      actors.push({ ...base, state: 'DEAD', deathCause: 'missed heartbeats for 31 s', currentShardId: null, shard: null, candidatesPerSec: 0, imagesPerSec: 0, lastHeartbeatMs: nowMs - 95_000, restarts: 3 });
    } else {
      actors.push(base);
    }
  }
  const throughput: ThroughputPoint[] = [];
  for (let k = 119; k >= 0; k--) {
    const t = step / 10 + (119 - k);
    const wave = 1 + 0.25 * Math.sin(t / 9) + 0.1 * Math.sin(t / 2.3);
    throughput.push({
      atMs: nowMs - k * 1000,
      candidatesPerSec: 4400 * wave,
      downloadedPerSec: 640 * wave,
      keptPerSec: 190 * wave * (1 + 0.2 * Math.sin(t / 5)),
      mbInPerSec: 21 * wave,
    });
  }
  const done = 342 + Math.floor(step / 20);
  const shardSeconds = new Histogram(SHARD_SECONDS_BOUNDS);
  const batchSeconds = new Histogram(BATCH_SECONDS_BOUNDS);
  const similarity = new Histogram(SIMILARITY_BOUNDS);
  for (let k = 0; k < 64; k++) {
    shardSeconds.observe(400 + 37 * k);
    batchSeconds.observe(0.2 + 0.01 * (k % 9));
    similarity.observe(0.12 + 0.004 * k);
  }
  const queueDepth = 236 + (step % 20);
  return {
    runId: 'run-20251123-2140-7f3a',
    startedAtMs: START_MS,
    nowMs,
    paused: false,
    draining: false,
    ended: null,
    actors,
    shards: { queued: 1590 - done, leased: 46, done, failed: 7, total: 1985 },
    progress: (done + 7 + 21.4) / 1985,
    etaMs: 24_140_000 - step * 100,
    totals: {
      extracted: 21_934_112,
      duplicates: 1_102_554,
      downloaded: 3_214_877,
      failed: 1_012_334,
      filteredOut: 1_244_233,
      kept: 958_310,
      bytesIn: 104_233_917_221,
    },
    throughput,
    filter: {
      name: 'clip-vit-b32',
      provider: 'CUDA',
      batchSize: 256,
      imagesPerSec: 655,
      queueDepth,
      queueCapacity: 256,
      idleFraction: 0.03,
      verdict: bottleneckVerdict(queueDepth, 256, 0.03),
    },
    histograms: { shardSeconds: shardSeconds.data(), filterBatchSeconds: batchSeconds.data(), similarity: similarity.data() },
    topErrors: [
      { message: 'HTTP 404 Not Found', count: 412_803 },
      { message: 'timeout after 10 s', count: 231_577 },
      { message: 'not an image: text/html', count: 118_040 },
      { message: 'image too small (< 64 px)', count: 97_316 },
      { message: 'HTTP 403 Forbidden', count: 64_210 },
    ],
    output: { path: '/data/laion-cah/run-20251123-2140-7f3a', shardsWritten: done, pairsWritten: 931_022, bytes: 38_914_557_440 },
  };
}

/** A source that holds one snapshot and tells subscribers when set() replaces it. */
export class HeldSnapshotSource implements SnapshotSource {
  private readonly listeners = new Set<() => void>();

  constructor(private snapshot: CoordinatorSnapshot) {}

  current(): CoordinatorSnapshot {
    return this.snapshot;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  set(snapshot: CoordinatorSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of this.listeners) listener();
  }
}
