import type { FilterSnapshot, SampleCounts } from '../../coordinator/snapshot.js';
import { progressBar } from '../bars.js';
import { formatCount, formatPercent, formatRate, oneLine } from '../format.js';
import { fitLine, lineWidth, seg, titleLine, type Line, type Tone } from './line.js';

const VERDICTS: Record<FilterSnapshot['verdict'], { text: string; tone: Tone }> = {
  'filter-bound': { text: 'filter-bound (GPU is the bottleneck)', tone: 'bad' },
  'workers-bound': { text: 'workers-bound (add workers)', tone: 'warn' },
  balanced: { text: 'balanced', tone: 'good' },
  idle: { text: 'idle (no images arriving)', tone: 'dim' },
  'no-workers': { text: 'no worker attached', tone: 'warn' },
  paused: { text: 'paused (p resumes leasing)', tone: 'warn' },
  draining: { text: 'draining (finishing leased shards)', tone: 'warn' },
  done: { text: 'done', tone: 'good' },
};

function providerTone(provider: string): Tone {
  const p = provider.toLowerCase();
  if (p.includes('cuda') || p.includes('tensorrt')) return 'good';
  if (p === 'none' || p === '') return 'dim';
  return 'warn';
}

/** The CLIP outcome: pairs kept and filtered out, with the share kept. */
function outcomeLine(totals: Pick<SampleCounts, 'kept' | 'filteredOut'>, width: number): Line {
  const scored = totals.kept + totals.filteredOut;
  const line = [seg('kept '), seg(formatCount(totals.kept), 'good'), seg(`  filtered out ${formatCount(totals.filteredOut)}`)];
  const share = seg(`  (${formatPercent(totals.kept / scored)} kept)`, 'dim');
  return scored > 0 && lineWidth([...line, share]) <= width ? [...line, share] : line;
}

/** Execution provider, batch, rate, the CLIP outcome, queue and the bottleneck verdict: five lines. */
export function filterLines(filter: FilterSnapshot, totals: Pick<SampleCounts, 'kept' | 'filteredOut'>, width: number): Line[] {
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
    outcomeLine(totals, width),
    [seg('queue '), seg(progressBar(fill, barWidth), fill >= 0.75 ? 'bad' : 'good'), seg(` ${queue}`)],
    [seg('▶ '), seg(verdict.text, verdict.tone)],
  ];
  return lines.map((l) => fitLine(l, width));
}
