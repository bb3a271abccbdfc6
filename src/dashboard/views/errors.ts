import type { ErrorCount } from '../../coordinator/snapshot.js';
import { formatCount, oneLine } from '../format.js';
import { fitLine, seg, titleLine, type Line } from './line.js';

const COUNT_WIDTH = 6;

/** The most frequent download/resize errors with their counts: a title and up to `rows` lines. */
export function errorsLines(errors: readonly ErrorCount[], width: number, rows: number): Line[] {
  const total = errors.reduce((n, e) => n + e.count, 0);
  const lines: Line[] = [titleLine('Errors', seg(errors.length === 0 ? 'none' : `top ${Math.min(rows, errors.length)}, ${formatCount(total)} in all`, 'dim'))];
  for (const e of errors.slice(0, rows)) {
    lines.push([seg(formatCount(e.count).padStart(COUNT_WIDTH), 'bad'), seg(' '), seg(oneLine(e.message))]);
  }
  return lines.map((l) => fitLine(l, width));
}
