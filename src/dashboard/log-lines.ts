import type { Logger } from 'pino';
import type { CoordinatorSnapshot } from '../coordinator/snapshot.js';
import { formatCount, formatDuration, formatPercent, formatRate } from './format.js';
import type { SnapshotSource } from '../coordinator/snapshot-source.js';
import { actorsLines } from './views/actors.js';
import { errorsLines } from './views/errors.js';
import { filterLines } from './views/filter.js';
import { headerLine } from './views/frame.js';
import { lineText, type Line } from './views/line.js';
import { outputLines } from './views/output.js';
import { shardsLines } from './views/shards.js';
import { throughputLines } from './views/throughput.js';

const round = (n: number, digits = 1): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : 0);

/**
 * The dashboard's figures as one flat-ish object: the periodic JSON log line, and the top of
 * `cah status --json`.
 */
export function snapshotSummary(s: CoordinatorSnapshot): Record<string, unknown> {
  const latest = s.throughput[s.throughput.length - 1];
  const actorsIn = (state: string): number => s.actors.filter((a) => a.state === state).length;
  const finished = s.shards.done + s.shards.failed;
  return {
    runId: s.runId,
    elapsedS: Math.round((s.nowMs - s.startedAtMs) / 1000),
    paused: s.paused,
    draining: s.draining,
    shardsQueued: s.shards.queued,
    shardsLeased: s.shards.leased,
    shardsDone: s.shards.done,
    shardsFailed: s.shards.failed,
    shardsTotal: s.shards.total,
    shardsFinished: finished,
    progress: round(s.progress, 4),
    etaS: s.etaMs === null ? null : Math.round(s.etaMs / 1000),
    ended: s.ended ? { at: new Date(s.ended.atMs).toISOString(), reason: s.ended.reason } : null,
    actorsAlive: actorsIn('ALIVE'),
    actorsRestarting: actorsIn('RESTARTING'),
    actorsDead: actorsIn('DEAD'),
    actorsPending: actorsIn('PENDING_CREATION'),
    candidates: s.totals.extracted,
    duplicates: s.totals.duplicates,
    downloaded: s.totals.downloaded,
    failed: s.totals.failed,
    filteredOut: s.totals.filteredOut,
    kept: s.totals.kept,
    bytesIn: s.totals.bytesIn,
    candidatesPerSec: round(latest?.candidatesPerSec ?? 0),
    downloadedPerSec: round(latest?.downloadedPerSec ?? 0),
    keptPerSec: round(latest?.keptPerSec ?? 0),
    mbInPerSec: round(latest?.mbInPerSec ?? 0, 2),
    filter: s.filter.name,
    filterProvider: s.filter.provider,
    filterBatchSize: s.filter.batchSize,
    filterImagesPerSec: round(s.filter.imagesPerSec),
    filterQueueDepth: s.filter.queueDepth,
    filterQueueCapacity: s.filter.queueCapacity,
    filterIdleFraction: round(s.filter.idleFraction, 3),
    verdict: s.filter.verdict,
    topErrors: s.topErrors.slice(0, 3),
    outputPath: s.output.path,
    outputShards: s.output.shardsWritten,
    pairsWritten: s.output.pairsWritten,
    outputBytes: s.output.bytes,
    ...(s.where ? { logFile: s.where.logFile, metrics: s.where.metrics } : {}),
    ...(s.output.cost ? { swarmEurPerHour: s.output.cost.hourlyGross, keptPerEuro: s.output.cost.keptPerEuro } : {}),
  };
}

/** camelCase → snake_case, the key style of every log line (pino's own keys are single words). */
function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function snakeKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), v]));
}

/** A short human message for the log line, so that a plain `tail` reads well too. */
function statusMessage(s: CoordinatorSnapshot): string {
  const latest = s.throughput[s.throughput.length - 1];
  const finished = s.shards.done + s.shards.failed;
  return (
    `status: ${finished}/${s.shards.total} shards (${formatPercent(s.progress)}), ` +
    `${formatCount(s.totals.kept)} kept, ${formatCount(s.totals.filteredOut)} filtered out, ` +
    `${formatRate(latest?.keptPerSec ?? 0)} kept/s, ${s.filter.verdict}, ETA ${formatDuration(s.etaMs)}`
  );
}

/**
 * The one line a run ends with, on the terminal and in the log: how it ended, and what it made.
 * `cah status` prints it too for a run that is over.
 */
export function closingLine(s: CoordinatorSnapshot): string {
  const t = s.totals;
  const how = s.ended ? `${s.ended.reason} at ${new Date(s.ended.atMs).toISOString().slice(0, 19)}Z` : 'running';
  return (
    `run ${s.runId} ${how} after ${formatDuration((s.ended?.atMs ?? s.nowMs) - s.startedAtMs)}: ` +
    `${s.shards.done}/${s.shards.total} shards done, ${s.shards.failed} failed · ` +
    `${t.extracted} candidates (${t.duplicates} duplicates), ${t.downloaded} downloaded, ${t.failed} failed, ` +
    `${t.filteredOut} filtered out, ${t.kept} kept · ${s.output.pairsWritten} pairs written to ${s.output.path}`
  );
}

/**
 * One structured JSON line with the dashboard's figures every `intervalMs` (when stdout is not a
 * terminal, or with --no-dashboard), and a last one on stop().
 */
export function startStatusLog(source: SnapshotSource, logger: Logger, intervalMs = 5000): { stop(): void } {
  const log = (final: boolean): void => {
    try {
      const s = source.current();
      logger.info(snakeKeys({ ...snapshotSummary(s), ...(final ? { final: true } : {}) }), statusMessage(s));
    } catch (err) {
      logger.warn({ err }, 'status: could not read the coordinator snapshot');
    }
  };
  const timer = setInterval(() => log(false), intervalMs);
  timer.unref();
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      log(true);
    },
  };
}

const MAX_STATUS_ACTORS = 200;

/** The dashboard's panels, one under the other, as plain text: `cah status` (no ink, no colours). */
export function formatStatusText(s: CoordinatorSnapshot, width = 100): string {
  const w = Math.max(40, Math.floor(width));
  const sections: Line[][] = [
    [headerLine({ title: 'cah', runId: s.runId, elapsedMs: s.nowMs - s.startedAtMs, paused: s.paused, draining: s.draining }, w)],
    shardsLines(s.shards, { progress: s.progress, etaMs: s.etaMs, ended: s.ended }, w),
    filterLines(s.filter, s.totals, w),
    throughputLines(s.throughput, s.totals, w, 4),
    actorsLines(s.actors, s.nowMs, w, Math.min(s.actors.length, MAX_STATUS_ACTORS) + 2),
    errorsLines(s.topErrors, w, 10),
    outputLines(s.output, w),
  ];
  return sections.map((lines) => lines.map(lineText).join('\n')).join('\n\n');
}
