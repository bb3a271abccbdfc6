import type { RunLocations } from '../../coordinator/snapshot.js';
import { formatDuration, oneLine, truncateStart } from '../format.js';
import { fitLine, lineWidth, seg, type Line } from './line.js';

export interface HeaderInfo {
  title: string;
  runId: string;
  elapsedMs: number;
  paused: boolean;
  draining: boolean;
}

/** The top line: what runs, for how long, and whether leasing is paused or the run drains. */
export function headerLine(info: HeaderInfo, width: number): Line {
  const line = [
    seg(info.title, 'strong'),
    seg(` · run ${oneLine(info.runId)} · up ${formatDuration(info.elapsedMs)}`),
    ...(info.paused ? [seg(' '), seg(' PAUSED ', 'warn')] : []),
    ...(info.draining ? [seg(' '), seg(' DRAINING ', 'bad')] : []),
  ];
  return fitLine(line, width);
}

/** The bottom line: the keys (none once the run has ended), then where the log and /metrics are. */
export function footerLine(state: { paused: boolean; draining: boolean; ended: boolean; where?: RunLocations }, width: number): Line {
  const keys = state.ended
    ? [seg('run ended', 'dim')]
    : [
        seg('q', 'key'),
        seg(state.draining ? ' draining…  ' : ' drain & quit  '),
        seg('p', 'key'),
        seg(state.paused ? ' resume leasing  ' : ' pause leasing  '),
        seg('?', 'key'),
        seg(' help'),
      ];
  const where = state.where;
  const extras = [
    ...(where?.metrics ? [`metrics ${where.metrics}`] : []),
    ...(where?.logFile ? [`log ${where.logFile}`] : []),
  ].join('  ');
  if (!extras) return fitLine(keys, width);
  // The log path keeps its end (the file name) when the line is short of room.
  const room = width - lineWidth(keys) - 2;
  return room >= 12 ? fitLine([...keys, seg('  '), seg(truncateStart(extras, room), 'dim')], width) : fitLine(keys, width);
}

const HELP: readonly Line[] = [
  [seg('Help', 'title'), seg(' (press ? to close)', 'dim')],
  [seg('q', 'key'), seg('  stop leasing, let leased shards finish, write output, then quit')],
  [seg('p', 'key'), seg('  pause/resume handing out shards (running shards go on)')],
  [seg('?', 'key'), seg('  this help')],
  [seg('Actors: ', 'strong'), seg('hb = seconds since the last heartbeat, rst = restarts')],
  [seg('Filter: ', 'strong'), seg('filter-bound = queue full and CLIP busy: more GPU helps;')],
  [seg('        workers-bound = queue empty and CLIP waiting: more workers help')],
  [seg('Throughput: ', 'strong'), seg('sparklines over the last ~2 minutes, newest on the right')],
];

/** The help panel, in at most `maxLines` lines. */
export function helpLines(width: number, maxLines: number): Line[] {
  return HELP.slice(0, Math.max(0, maxLines)).map((l) => fitLine(l, width));
}
