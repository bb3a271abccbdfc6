import type { FilterSnapshot } from '../../coordinator/snapshot.js';
import { progressBar } from '../bars.js';
import { formatPercent, formatRate, oneLine } from '../format.js';
import { fitLine, seg, titleLine, type Line, type Tone } from './line.js';

const VERDICTS: Record<FilterSnapshot['verdict'], { text: string; tone: Tone }> = {
  'filter-bound': { text: 'filter-bound (GPU is the bottleneck)', tone: 'bad' },
  'workers-bound': { text: 'workers-bound (add workers)', tone: 'warn' },
  balanced: { text: 'balanced', tone: 'good' },
  idle: { text: 'idle (no images arriving)', tone: 'dim' },
};

function providerTone(provider: string): Tone {
  const p = provider.toLowerCase();
  if (p.includes('cuda') || p.includes('tensorrt')) return 'good';
  if (p === 'none' || p === '') return 'dim';
  return 'warn';
}

/** Execution provider, batch, rate, queue and the bottleneck verdict: four lines. */
export function filterLines(filter: FilterSnapshot, width: number): Line[] {
  const queue = `${filter.queueDepth}/${filter.queueCapacity}`;
  const fill = filter.queueCapacity > 0 ? filter.queueDepth / filter.queueCapacity : 0;
  const barWidth = Math.max(4, width - queue.length - 8);
  const verdict = VERDICTS[filter.verdict] ?? { text: String(filter.verdict), tone: 'dim' as Tone };
  const lines: Line[] = [
    titleLine('Filter', seg(oneLine(filter.name)), seg(' on '), seg(oneLine(filter.provider) || 'none', providerTone(filter.provider))),
    [
      seg(`batch ${filter.batchSize}  `),
      seg(formatRate(filter.imagesPerSec), 'strong'),
      seg(` img/s  idle ${formatPercent(filter.idleFraction)}`),
    ],
    [seg('queue '), seg(progressBar(fill, barWidth), fill >= 0.75 ? 'bad' : 'good'), seg(` ${queue}`)],
    [seg('▶ '), seg(verdict.text, verdict.tone)],
  ];
  return lines.map((l) => fitLine(l, width));
}
