import type { OutputSnapshot } from '../../coordinator/snapshot.js';
import { formatBytes, formatCount, oneLine, truncateStart } from '../format.js';
import { fitLine, seg, titleLine, type Line } from './line.js';

/** Where the webdataset goes and how much is in it: three lines; long paths keep their end. */
export function outputLines(output: OutputSnapshot, width: number): Line[] {
  const lines: Line[] = [
    titleLine('Output', seg(formatBytes(output.bytes), 'strong')),
    [seg(truncateStart(oneLine(output.path), width))],
    [seg(`shards ${output.shardsWritten}  pairs kept `), seg(formatCount(output.pairsKept), 'good')],
  ];
  return lines.map((l) => fitLine(l, width));
}
