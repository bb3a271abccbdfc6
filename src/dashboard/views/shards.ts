import type { ShardCounts } from '../../coordinator/snapshot.js';
import { progressBar } from '../bars.js';
import { formatCount, formatDuration } from '../format.js';
import { fitLine, lineWidth, seg, titleLine, type Line } from './line.js';

/** The four counts, spaced out when they fit, tight or abbreviated when they do not. */
function countsLine(shards: ShardCounts, width: number): Line {
  const variants: [string, (n: number) => string][] = [
    ['  ', String],
    [' ', String],
    [' ', formatCount],
  ];
  let line: Line = [];
  for (const [gap, num] of variants) {
    line = [
      seg(`queued ${num(shards.queued)}${gap}leased ${num(shards.leased)}${gap}done `),
      seg(num(shards.done), 'good'),
      seg(`${gap}failed `),
      seg(num(shards.failed), shards.failed > 0 ? 'bad' : undefined),
    ];
    if (lineWidth(line) <= width) break;
  }
  return line;
}

/** How the run stands: its progress (finished shards plus the read share of running ones) and ETA. */
export interface ShardsProgress {
  /** 0..1 */
  progress: number;
  etaMs: number | null;
  ended: { atMs: number; reason: string } | null;
}

function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** Queued / leased / done / failed, a progress bar and the ETA (or how the run ended): three lines. */
export function shardsLines(shards: ShardCounts, state: ShardsProgress, width: number): Line[] {
  const finished = shards.done + shards.failed;
  const fraction = state.progress;
  const complete = shards.total > 0 && shards.queued + shards.leased === 0;
  const eta = state.ended
    ? `${complete ? 'complete' : state.ended.reason} ${clockTime(state.ended.atMs)}`
    : complete
      ? 'complete'
      : `ETA ${formatDuration(state.etaMs)}`;
  // Floored, with a decimal: a long shard visibly moves, and 100% means done.
  const percent = `${(Math.floor(Math.min(1, Math.max(0, fraction)) * 1000) / 10).toFixed(1)}%`.padStart(6);
  const barWidth = Math.max(4, width - percent.length - eta.length - 2);
  const lines: Line[] = [
    titleLine('Shards', seg(`${finished}/${shards.total} finished`)),
    [seg(progressBar(fraction, barWidth), 'good'), seg(` ${percent} `), seg(eta, complete ? 'good' : state.ended ? 'warn' : undefined)],
    countsLine(shards, width),
  ];
  return lines.map((l) => fitLine(l, width));
}
