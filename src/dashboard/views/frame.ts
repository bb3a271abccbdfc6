import { formatDuration, oneLine } from '../format.js';
import { fitLine, seg, type Line } from './line.js';

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

/** The bottom line: the keys. */
export function footerLine(paused: boolean, draining: boolean, width: number): Line {
  const line = [
    seg('q', 'key'),
    seg(draining ? ' draining…  ' : ' drain & quit  '),
    seg('p', 'key'),
    seg(paused ? ' resume leasing  ' : ' pause leasing  '),
    seg('?', 'key'),
    seg(' help'),
  ];
  return fitLine(line, width);
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
