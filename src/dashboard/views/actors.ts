import type { ActorSnapshot, ActorView } from '../../coordinator/snapshot.js';
import { fit, formatAge, formatCount, formatPercent, formatRate, oneLine } from '../format.js';
import { seg, fitLine, titleLine, type Line, type Tone } from './line.js';

const STATE_LABEL: Record<ActorView, string> = {
  PENDING_CREATION: 'PENDING',
  ALIVE: 'ALIVE',
  RESTARTING: 'RESTARTING',
  DEAD: 'DEAD',
  EXITED: 'EXITED',
};

const STATE_TONE: Record<ActorView, Tone> = {
  PENDING_CREATION: 'dim',
  ALIVE: 'good',
  RESTARTING: 'warn',
  DEAD: 'bad',
  EXITED: 'dim',
};

/** Troubled actors first: with more actors than lines, those are the rows worth seeing. */
const STATE_ORDER: Record<ActorView, number> = { RESTARTING: 0, DEAD: 1, PENDING_CREATION: 2, ALIVE: 3, EXITED: 4 };

const collator = new Intl.Collator('en', { numeric: true });

interface Columns {
  id: number;
  host: number;
  /** The current shard's sample counts (extracted, downloaded, kept, filtered out): wide terminals. */
  samples: boolean;
}

// state, shard, read share, cand/s, img/s, heartbeat, restarts, and a space before each column after the first
const STATE_W = 10;
const SHARD_W = 6;
const PCT_W = 4;
const CAND_W = 7;
const IMG_W = 6;
const HB_W = 4;
const RESTARTS_W = 3;
const FIXED = STATE_W + SHARD_W + PCT_W + CAND_W + IMG_W + HB_W + RESTARTS_W + 8;
/** Four sample counts of the current shard, each with its space. */
const COUNT_W = 6;
const SAMPLES_W = 4 * (COUNT_W + 1);
/** Where a dead or restarting actor shows its cause: the shard, rate and heartbeat columns. */
const CAUSE_W = SHARD_W + PCT_W + CAND_W + IMG_W + HB_W + 4;
/** Terminals at least this wide show each actor's sample counts too. */
const SAMPLES_MIN_WIDTH = 120;

function columnsFor(width: number): Columns {
  const samples = width >= SAMPLES_MIN_WIDTH;
  const free = Math.max(0, width - FIXED - (samples ? SAMPLES_W : 0));
  // Below ~60 columns the host gives way to the actor id.
  if (free < 24) return { id: Math.max(6, free), host: 0, samples };
  const id = Math.min(32, Math.max(8, Math.floor(free * 0.45)));
  return { id, host: Math.min(40, free - id - 1), samples };
}

function headerLine(cols: Columns): Line {
  const parts = [
    fit('actor', cols.id),
    ...(cols.host > 0 ? [fit('host', cols.host)] : []),
    fit('state', STATE_W),
    fit('shard', SHARD_W, 'right'),
    fit('read', PCT_W, 'right'),
    ...(cols.samples ? ['cand', 'dl', 'kept', 'out'].map((h) => fit(h, COUNT_W, 'right')) : []),
    fit('cand/s', CAND_W, 'right'),
    fit('img/s', IMG_W, 'right'),
    fit('hb', HB_W, 'right'),
    fit('rst', RESTARTS_W, 'right'),
  ];
  return [seg(parts.join(' '), 'dim')];
}

function actorLine(a: ActorSnapshot, cols: Columns, nowMs: number): Line {
  const head = fit(oneLine(a.actorId), cols.id) + ' ' + (cols.host > 0 ? fit(oneLine(a.host), cols.host) + ' ' : '');
  const state = seg(fit(STATE_LABEL[a.state] ?? String(a.state), STATE_W), STATE_TONE[a.state] ?? 'dim');
  const restarts = seg(fit(String(a.restarts), RESTARTS_W, 'right'), a.restarts > 0 ? 'warn' : undefined);
  if ((a.state === 'DEAD' || a.state === 'RESTARTING' || a.state === 'EXITED') && a.deathCause) {
    return [seg(head), state, seg(' '), seg(fit(oneLine(a.deathCause), CAUSE_W), STATE_TONE[a.state]), seg(' '), restarts];
  }
  const exited = a.state === 'EXITED';
  const age = a.lastHeartbeatMs === null || exited ? null : nowMs - a.lastHeartbeatMs;
  const samples = a.shard?.samples;
  const counts = cols.samples
    ? [samples?.extracted, samples?.downloaded, samples?.kept, samples?.filteredOut].map((n) =>
        fit(n === undefined ? '' : formatCount(n), COUNT_W, 'right'),
      )
    : [];
  const body = [
    fit(a.currentShardId === null ? '—' : String(a.currentShardId), SHARD_W, 'right'),
    fit(a.shard?.fraction != null ? formatPercent(a.shard.fraction) : '', PCT_W, 'right'),
    ...counts,
    fit(exited ? '' : formatRate(a.candidatesPerSec), CAND_W, 'right'),
    fit(exited ? '' : formatRate(a.imagesPerSec), IMG_W, 'right'),
    fit(formatAge(age), HB_W, 'right'),
  ].join(' ');
  return [seg(head), state, seg(' ' + body + ' '), restarts];
}

export function sortActors(actors: readonly ActorSnapshot[]): ActorSnapshot[] {
  return [...actors].sort(
    (a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || collator.compare(a.actorId, b.actorId),
  );
}

function stateSummary(actors: readonly ActorSnapshot[]): string {
  const counts = new Map<ActorView, number>();
  for (const a of actors) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
  const parts = (['ALIVE', 'RESTARTING', 'DEAD', 'PENDING_CREATION', 'EXITED'] as const)
    .filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${STATE_LABEL[s].toLowerCase()}`);
  return `${actors.length} (${parts.join(', ') || 'none yet'})`;
}

/**
 * One row per worker in at most `maxLines` lines (title and column header included); actors that
 * do not fit are counted on a "+N more" line.
 */
export function actorsLines(
  actors: readonly ActorSnapshot[],
  nowMs: number,
  width: number,
  maxLines: number,
  attachHint?: string,
): Line[] {
  if (maxLines <= 0) return [];
  const cols = columnsFor(width);
  const lines: Line[] = [titleLine('Actors', seg(stateSummary(actors)))];
  // As `ray start --address` does: with no worker attached, say how to attach one.
  if (attachHint && !actors.some((a) => a.state === 'ALIVE') && maxLines >= 2) {
    lines.push([seg('no worker attached: ', 'warn'), seg(attachHint)]);
  }
  if (maxLines > lines.length) lines.push(headerLine(cols));
  const room = maxLines - lines.length;
  const sorted = sortActors(actors);
  const shown = sorted.length <= room ? sorted : sorted.slice(0, Math.max(0, room - 1));
  for (const a of shown) lines.push(actorLine(a, cols, nowMs));
  const hidden = sorted.length - shown.length;
  if (hidden > 0 && room > 0) lines.push([seg(`+${hidden} more`, 'dim')]);
  return lines.map((l) => fitLine(l, width));
}
