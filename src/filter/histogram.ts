/** Bucket counts of a histogram as Prometheus exposes it: cumulative counts per upper bound. */
export interface HistogramData {
  /** Upper bounds, increasing; +Inf is implied. */
  bounds: readonly number[];
  /** Observations ≤ each bound (cumulative), same length as `bounds`. */
  cumulative: number[];
  sum: number;
  count: number;
}

/**
 * A fixed-bucket histogram: constant memory however many values it sees. Observed where the event
 * happens (a batch, a verdict, a shard) and exposed through the snapshot.
 */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count++;
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i]!++;
  }

  data(): HistogramData {
    let running = 0;
    return {
      bounds: this.bounds,
      cumulative: this.counts.map((n) => (running += n)),
      sum: this.sum,
      count: this.count,
    };
  }
}

/** Filter batch latency, seconds. */
export const BATCH_SECONDS_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** CLIP cosine similarity of scored pairs. */
export const SIMILARITY_BOUNDS = [-0.1, 0, 0.05, 0.1, 0.15, 0.2, 0.22, 0.24, 0.26, 0.28, 0.3, 0.32, 0.34, 0.36, 0.4, 0.5, 1];
/** Time from a shard's first sample to its commit, seconds. */
export const SHARD_SECONDS_BOUNDS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

export function emptyHistogram(bounds: readonly number[]): HistogramData {
  return new Histogram(bounds).data();
}
