import type { ShardCounts } from '../../coordinator/snapshot.js';
import { progressBar } from '../bars.js';
import { formatCount, formatDuration, formatPercent } from '../format.js';
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

/** Queued / leased / done / failed, a progress bar and the ETA: three lines. */
export function shardsLines(shards: ShardCounts, etaMs: number | null, width: number): Line[] {
  const finished = shards.done + shards.failed;
  const fraction = shards.total > 0 ? finished / shards.total : 0;
  const complete = shards.total > 0 && shards.queued + shards.leased === 0;
  const eta = complete ? 'complete' : `ETA ${formatDuration(etaMs)}`;
  const percent = formatPercent(fraction).padStart(4);
  const barWidth = Math.max(4, width - percent.length - eta.length - 2);
  const lines: Line[] = [
    titleLine('Shards', seg(`${finished}/${shards.total} finished`)),
    [seg(progressBar(fraction, barWidth), 'good'), seg(` ${percent} `), seg(eta, complete ? 'good' : undefined)],
    countsLine(shards, width),
  ];
  return lines.map((l) => fitLine(l, width));
}
