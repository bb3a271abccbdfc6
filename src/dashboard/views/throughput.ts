import type { CoordinatorSnapshot, ThroughputPoint } from '../../coordinator/snapshot.js';
import { sparkline } from '../bars.js';
import { fit, formatBytes, formatCount, formatRate } from '../format.js';
import { fitLine, seg, titleLine, type Line } from './line.js';

interface Series {
  label: string;
  pick: (p: ThroughputPoint) => number;
}

const SERIES: readonly Series[] = [
  { label: 'cand/s', pick: (p) => p.candidatesPerSec },
  { label: 'dl/s', pick: (p) => p.downloadedPerSec },
  { label: 'kept/s', pick: (p) => p.keptPerSec },
  { label: 'MB/s in', pick: (p) => p.mbInPerSec },
];

const LABEL_WIDTH = 8;
const VALUE_WIDTH = 7;

function seriesCell(points: readonly ThroughputPoint[], series: Series, width: number): Line {
  const values = points.map(series.pick);
  const latest = values.length > 0 ? formatRate(values[values.length - 1]!) : '—';
  const sparkWidth = Math.max(1, width - LABEL_WIDTH - VALUE_WIDTH);
  return [seg(fit(series.label, LABEL_WIDTH)), seg(sparkline(values, sparkWidth), 'good'), seg(fit(latest, VALUE_WIDTH, 'right'), 'strong')];
}

export type RunTotals = CoordinatorSnapshot['totals'];

/**
 * Sparklines of candidates/s, downloaded/s, kept/s and MB/s in, most recent on the right, under a
 * title with the run's totals: a title and `rows` lines (4: one series a line; 2: two side by side).
 */
export function throughputLines(points: readonly ThroughputPoint[], totals: RunTotals, width: number, rows: 2 | 4): Line[] {
  const lines: Line[] = [
    titleLine(
      'Throughput',
      seg(`${formatCount(totals.extracted)} cand · ${formatCount(totals.duplicates)} dup · ${formatCount(totals.downloaded)} dl · `),
      seg(`${formatCount(totals.kept)} kept`, 'good'),
      seg(` · ${formatCount(totals.failed)} failed · ${formatBytes(totals.bytesIn)} in`),
    ),
  ];
  if (rows === 4) {
    for (const s of SERIES) lines.push(seriesCell(points, s, width));
  } else {
    const gap = 2;
    const left = Math.floor((width - gap) / 2);
    const right = width - gap - left;
    for (let i = 0; i < SERIES.length; i += 2) {
      lines.push([...seriesCell(points, SERIES[i]!, left), seg(' '.repeat(gap)), ...seriesCell(points, SERIES[i + 1]!, right)]);
    }
  }
  return lines.map((l) => fitLine(l, width));
}
