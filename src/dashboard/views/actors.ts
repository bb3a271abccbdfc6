import type { ActorSnapshot, ActorState } from '../../coordinator/snapshot.js';
import { fit, formatAge, formatRate, oneLine } from '../format.js';
import { seg, fitLine, titleLine, type Line, type Tone } from './line.js';

const STATE_LABEL: Record<ActorState, string> = {
  PENDING_CREATION: 'PENDING',
  ALIVE: 'ALIVE',
  RESTARTING: 'RESTARTING',
  DEAD: 'DEAD',
};

const STATE_TONE: Record<ActorState, Tone> = {
  PENDING_CREATION: 'dim',
  ALIVE: 'good',
  RESTARTING: 'warn',
  DEAD: 'bad',
};

/** Troubled actors first: with more actors than lines, those are the rows worth seeing. */
const STATE_ORDER: Record<ActorState, number> = { RESTARTING: 0, DEAD: 1, PENDING_CREATION: 2, ALIVE: 3 };

const collator = new Intl.Collator('en', { numeric: true });

interface Columns {
  id: number;
  host: number;
}

// state, shard, cand/s, img/s, heartbeat, restarts, and a space before each column after the first
const STATE_W = 10;
const SHARD_W = 6;
const CAND_W = 7;
const IMG_W = 6;
const HB_W = 4;
const RESTARTS_W = 3;
const FIXED = STATE_W + SHARD_W + CAND_W + IMG_W + HB_W + RESTARTS_W + 7;
/** Where a dead or restarting actor shows its cause: the shard, rate and heartbeat columns. */
const CAUSE_W = SHARD_W + CAND_W + IMG_W + HB_W + 3;

function columnsFor(width: number): Columns {
  const free = Math.max(0, width - FIXED);
  // Below ~60 columns the host gives way to the actor id.
  if (free < 24) return { id: Math.max(6, free), host: 0 };
  const id = Math.min(24, Math.max(8, Math.floor(free * 0.45)));
  return { id, host: Math.min(28, free - id - 1) };
}

function headerLine(cols: Columns): Line {
  const parts = [
    fit('actor', cols.id),
    ...(cols.host > 0 ? [fit('host', cols.host)] : []),
    fit('state', STATE_W),
    fit('shard', SHARD_W, 'right'),
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
  if ((a.state === 'DEAD' || a.state === 'RESTARTING') && a.deathCause) {
    return [seg(head), state, seg(' '), seg(fit(oneLine(a.deathCause), CAUSE_W), STATE_TONE[a.state]), seg(' '), restarts];
  }
  const age = a.lastHeartbeatMs === null ? null : nowMs - a.lastHeartbeatMs;
  const body = [
    fit(a.currentShardId === null ? '—' : String(a.currentShardId), SHARD_W, 'right'),
    fit(formatRate(a.candidatesPerSec), CAND_W, 'right'),
    fit(formatRate(a.imagesPerSec), IMG_W, 'right'),
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
  const counts = new Map<ActorState, number>();
  for (const a of actors) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
  const parts = (['ALIVE', 'RESTARTING', 'DEAD', 'PENDING_CREATION'] as const)
    .filter((s) => counts.has(s))
    .map((s) => `${counts.get(s)} ${STATE_LABEL[s].toLowerCase()}`);
  return `${actors.length} (${parts.join(', ') || 'none yet'})`;
}

/**
 * One row per worker in at most `maxLines` lines (title and column header included); actors that
 * do not fit are counted on a "+N more" line.
 */
export function actorsLines(actors: readonly ActorSnapshot[], nowMs: number, width: number, maxLines: number): Line[] {
  if (maxLines <= 0) return [];
  const cols = columnsFor(width);
  const lines: Line[] = [titleLine('Actors', seg(stateSummary(actors)))];
  if (maxLines >= 2) lines.push(headerLine(cols));
  const room = maxLines - lines.length;
  const sorted = sortActors(actors);
  const shown = sorted.length <= room ? sorted : sorted.slice(0, Math.max(0, room - 1));
  for (const a of shown) lines.push(actorLine(a, cols, nowMs));
  const hidden = sorted.length - shown.length;
  if (hidden > 0 && room > 0) lines.push([seg(`+${hidden} more`, 'dim')]);
  return lines.map((l) => fitLine(l, width));
}
