import { listSwarms } from './state.js';

/** What the recorded swarm costs, and what a run got for it. */
export interface SwarmCost {
  servers: number;
  /** Servers whose price the API did not give (not in hourlyGross). */
  unpriced: number;
  /** Gross € per hour of the priced servers together. */
  hourlyGross: number;
  runHours: number;
  /** ≈ € the swarm cost during the run so far (its hourly price × the run's duration). */
  runGross: number;
  /** Pairs kept per € of swarm time, null before anything was spent. */
  keptPerEuro: number | null;
}

/** The recorded swarm's size and price (null without servers). */
export interface SwarmPrice {
  servers: number;
  unpriced: number;
  hourlyGross: number;
}

export function recordedSwarmPrice(stateDir: string): SwarmPrice | null {
  const servers = listSwarms(stateDir).flatMap((s) => s.servers);
  if (servers.length === 0) return null;
  const priced = servers.filter((s) => typeof s.hourlyGross === 'number');
  return { servers: servers.length, unpriced: servers.length - priced.length, hourlyGross: priced.reduce((sum, s) => sum + s.hourlyGross!, 0) };
}

/** Users judge a crawl by kept pairs per hour per euro: this is that figure for a run so far. */
export function costOfRun(price: SwarmPrice, run: { startedAtMs: number; nowMs: number; kept: number }): SwarmCost {
  const runHours = Math.max(0, run.nowMs - run.startedAtMs) / 3_600_000;
  const runGross = price.hourlyGross * runHours;
  return { ...price, runHours, runGross, keptPerEuro: runGross > 0 ? run.kept / runGross : null };
}

export function swarmCost(stateDir: string, run: { startedAtMs: number; nowMs: number; kept: number }): SwarmCost | null {
  const price = recordedSwarmPrice(stateDir);
  return price ? costOfRun(price, run) : null;
}

export function formatSwarmCost(cost: SwarmCost): string {
  const perEuro = cost.keptPerEuro === null ? '—' : Math.round(cost.keptPerEuro).toLocaleString('en-US');
  const unpriced = cost.unpriced > 0 ? ` (${cost.unpriced} without a price)` : '';
  return `Cost ${cost.servers} swarm servers${unpriced} · ${cost.hourlyGross.toFixed(4)} €/h · ≈${cost.runGross.toFixed(2)} € this run · ${perEuro} kept/€`;
}
