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

/** Users judge a crawl by kept pairs per hour per euro: this is that figure for the current run. */
export function swarmCost(stateDir: string, run: { startedAtMs: number; nowMs: number; kept: number }): SwarmCost | null {
  const servers = listSwarms(stateDir).flatMap((s) => s.servers);
  if (servers.length === 0) return null;
  const priced = servers.filter((s) => typeof s.hourlyGross === 'number');
  const hourlyGross = priced.reduce((sum, s) => sum + s.hourlyGross!, 0);
  const runHours = Math.max(0, run.nowMs - run.startedAtMs) / 3_600_000;
  const runGross = hourlyGross * runHours;
  return {
    servers: servers.length,
    unpriced: servers.length - priced.length,
    hourlyGross,
    runHours,
    runGross,
    keptPerEuro: runGross > 0 ? run.kept / runGross : null,
  };
}

export function formatSwarmCost(cost: SwarmCost): string {
  const perEuro = cost.keptPerEuro === null ? '—' : Math.round(cost.keptPerEuro).toLocaleString('en-US');
  const unpriced = cost.unpriced > 0 ? ` (${cost.unpriced} without a price)` : '';
  return `Cost ${cost.servers} swarm servers${unpriced} · ${cost.hourlyGross.toFixed(4)} €/h · ≈${cost.runGross.toFixed(2)} € this run · ${perEuro} kept/€`;
}
