/** The dashboard's panels: each takes the part of the snapshot it shows and the room it has. */
import type {
  ActorSnapshot,
  ErrorCount,
  FilterSnapshot,
  OutputSnapshot,
  RunLocations,
  SampleCounts,
  ShardCounts,
  ThroughputPoint,
} from '../coordinator/snapshot.js';
import { LinesView } from './lines-view.js';
import { actorsLines } from './views/actors.js';
import { errorsLines } from './views/errors.js';
import { filterLines } from './views/filter.js';
import { footerLine, headerLine, helpLines, type HeaderInfo } from './views/frame.js';
import { outputLines } from './views/output.js';
import { shardsLines, type ShardsProgress } from './views/shards.js';
import { throughputLines, type RunTotals } from './views/throughput.js';

export function ActorsPanel(props: { actors: readonly ActorSnapshot[]; nowMs: number; width: number; maxLines: number; attachHint?: string }) {
  return <LinesView lines={actorsLines(props.actors, props.nowMs, props.width, props.maxLines, props.attachHint)} width={props.width} />;
}

export function ShardsPanel(props: { shards: ShardCounts; state: ShardsProgress; width: number }) {
  return <LinesView lines={shardsLines(props.shards, props.state, props.width)} width={props.width} />;
}

export function ThroughputPanel(props: { points: readonly ThroughputPoint[]; totals: RunTotals; width: number; rows: 2 | 4 }) {
  return <LinesView lines={throughputLines(props.points, props.totals, props.width, props.rows)} width={props.width} />;
}

export function FilterPanel(props: { filter: FilterSnapshot; totals: Pick<SampleCounts, 'kept' | 'filteredOut'>; width: number }) {
  return <LinesView lines={filterLines(props.filter, props.totals, props.width)} width={props.width} />;
}

export function ErrorsPanel(props: { errors: readonly ErrorCount[]; width: number; rows: number }) {
  return <LinesView lines={errorsLines(props.errors, props.width, props.rows)} width={props.width} />;
}

export function OutputPanel(props: { output: OutputSnapshot; width: number }) {
  return <LinesView lines={outputLines(props.output, props.width)} width={props.width} />;
}

export function HelpPanel(props: { width: number; maxLines: number }) {
  return <LinesView lines={helpLines(props.width, props.maxLines)} width={props.width} />;
}

export function HeaderBar(props: HeaderInfo & { width: number }) {
  return <LinesView lines={[headerLine(props, props.width)]} width={props.width} />;
}

export function FooterBar(props: { paused: boolean; draining: boolean; ended: boolean; where?: RunLocations; width: number }) {
  const line = footerLine({ paused: props.paused, draining: props.draining, ended: props.ended, ...(props.where ? { where: props.where } : {}) }, props.width);
  return <LinesView lines={[line]} width={props.width} />;
}
