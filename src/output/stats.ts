/**
 * NNNNN_stats.json: img2dataset's keys (count, successes, failed_to_download, failed_to_resize,
 * duration, start_time, end_time, status_dict keyed by "success" and error message) plus cah's own
 * (filtered_out, counts by status, errors by status, extraction, timings).
 */

/** An error message is grouped by its first this many characters. */
const MAX_GROUP_CHARS = 300;

/**
 * The group an error message counts under: what varies per sample (byte counts, image sizes,
 * scores, addresses) is taken out, so one kind of failure is one line of the status_dict.
 * HTTP status codes and the run's settings (thresholds, limits, timeouts) stay.
 */
export function errorGroup(message: string): string {
  // A worker writes these: a message of megabytes would cost as much at every count of it.
  return message
    .slice(0, MAX_GROUP_CHARS)
    .replace(/\b(\d{1,3}\.){3}\d{1,3}(:\d+)?\b/g, 'ADDRESS')
    .replace(/\[[0-9a-f:]+\](:\d+)?/gi, 'ADDRESS')
    .replace(/ -?\d+(\.\d+)?(e-?\d+)? ([<>]=?) threshold /g, ' $3 threshold ')
    .replace(/\b\d+x\d+\b/g, 'WxH')
    .replace(/\b\d+ bytes\b/g, 'N bytes')
    .replace(/(response too large: )\d+/g, '$1N');
}

export interface SampleOutcome {
  status: string;
  errorMessage: string | null;
  downloadMs: number | null;
  resizeMs: number | null;
}

export interface StatsContext {
  source: string | null;
  sourceErrors: string[];
  extraction: Record<string, number>;
  startedAtMs: number;
  endedAtMs: number;
}

/** Keeps the status_dict bounded like img2dataset's CappedCounter: past this many groups, the rarest go. */
const MAX_GROUPS = 10_000;

/** Counts one shard's samples as they are written; `json()` is the stats file. */
export class ShardStats {
  readonly counts: Record<string, number> = { success: 0, failed_to_download: 0, failed_to_resize: 0, filtered_out: 0 };
  private readonly statusDict = new Map<string, number>();
  private readonly errorsByStatus: Record<string, Record<string, number>> = {};
  private readonly downloadMs: number[] = [];
  private readonly resizeMs: number[] = [];
  total = 0;

  add(sample: SampleOutcome): void {
    this.total++;
    this.counts[sample.status] = (this.counts[sample.status] ?? 0) + 1;
    const group = sample.status === 'success' ? 'success' : errorGroup(sample.errorMessage ?? sample.status);
    this.statusDict.set(group, (this.statusDict.get(group) ?? 0) + 1);
    if (this.statusDict.size > MAX_GROUPS) this.keepMostFrequent();
    if (sample.status !== 'success' && sample.errorMessage) {
      const byMessage = (this.errorsByStatus[sample.status] ??= {});
      byMessage[group] = (byMessage[group] ?? 0) + 1;
    }
    if (sample.downloadMs !== null) this.downloadMs.push(sample.downloadMs);
    if (sample.resizeMs !== null) this.resizeMs.push(sample.resizeMs);
  }

  json(ctx: StatsContext): Record<string, unknown> {
    const c = this.counts;
    return {
      count: this.total,
      successes: c['success'],
      failed_to_download: c['failed_to_download'],
      failed_to_resize: c['failed_to_resize'],
      duration: (ctx.endedAtMs - ctx.startedAtMs) / 1000,
      start_time: ctx.startedAtMs / 1000,
      end_time: ctx.endedAtMs / 1000,
      status_dict: Object.fromEntries([...this.statusDict].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
      filtered_out: c['filtered_out'],
      counts_by_status: { ...c },
      error_counts: this.errorsByStatus,
      source: ctx.source,
      source_errors: ctx.sourceErrors,
      extraction: ctx.extraction,
      download_ms: summary(this.downloadMs),
      resize_ms: summary(this.resizeMs),
    };
  }

  private keepMostFrequent(): void {
    const kept = [...this.statusDict].sort((a, b) => b[1] - a[1]).slice(0, MAX_GROUPS / 2);
    this.statusDict.clear();
    for (const [k, v] of kept) this.statusDict.set(k, v);
  }
}

function summary(values: number[]): { mean: number | null; median: number | null } {
  if (values.length === 0) return { mean: null, median: null };
  const sorted = [...values].sort((a, b) => a - b);
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, median: sorted[Math.floor(sorted.length / 2)]! };
}
