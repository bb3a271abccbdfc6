import type { FilterSnapshot } from './snapshot.js';

export type BottleneckVerdict = FilterSnapshot['verdict'];

/** Queue at least this full counts as "mostly full". */
const FULL_FILL = 0.75;
/** Queue at most this full counts as "near empty". */
const EMPTY_FILL = 0.25;
/** The filter idles less than this when it is the bottleneck. */
const RARELY_IDLE = 0.2;
/** The filter idles at least this much when it starves for input. */
const OFTEN_IDLE = 0.3;

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

/**
 * Which side limits the run. A full queue with a busy filter means images arrive faster than CLIP
 * scores them (filter-bound: add GPU); an empty queue with an idle filter means the workers cannot
 * keep it fed (workers-bound: add workers). A filter idle the whole interval with nothing queued
 * has no work at all (idle); anything between is balanced.
 */
export function bottleneckVerdict(queueDepth: number, capacity: number, idleFraction: number): BottleneckVerdict {
  const fill = capacity > 0 ? clamp01(queueDepth / capacity) : 0;
  const idle = clamp01(idleFraction);
  if (queueDepth <= 0 && idle >= 1) return 'idle';
  if (fill >= FULL_FILL && idle < RARELY_IDLE) return 'filter-bound';
  if (fill <= EMPTY_FILL && idle >= OFTEN_IDLE) return 'workers-bound';
  return 'balanced';
}
