import type { OutputSnapshot } from '../../coordinator/snapshot.js';
import { formatBytes, formatCount, oneLine, truncateStart } from '../format.js';
import { fitLine, seg, titleLine, type Line } from './line.js';

/** Where the webdataset goes and how much is in it: three lines; long paths keep their end. */
export function outputLines(output: OutputSnapshot, width: number): Line[] {
  const cost = output.cost;
  const lines: Line[] = [
    titleLine('Output', seg(formatBytes(output.bytes), 'strong'), ...(cost ? [seg(`  ${cost.hourlyGross.toFixed(2)} €/h`)] : [])),
    [seg(truncateStart(oneLine(output.path), width))],
    [
      seg(`shards ${output.shardsWritten}  pairs written `),
      seg(formatCount(output.pairsWritten), 'good'),
      ...(cost?.keptPerEuro != null ? [seg(`  ${formatCount(Math.round(cost.keptPerEuro))}/€`)] : []),
    ],
  ];
  return lines.map((l) => fitLine(l, width));
}
