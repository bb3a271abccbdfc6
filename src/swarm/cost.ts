import type { Pricing } from './hetzner/types.js';
import { listSwarms } from './state.js';

/** Gross € per hour of a Primary IPv4 in each location, from `GET /pricing` (every server has one until deleted). */
export function ipv4HourlyByLocation(pricing: Pricing): Map<string, number> {
  const out = new Map<string, number>();
  for (const price of pricing.primary_ips.find((p) => p.type === 'ipv4')?.prices ?? []) {
    const gross = Number(price.price_hourly.gross);
    if (Number.isFinite(gross)) out.set(price.location, gross);
  }
  return out;
}

/** What the servers in one location cost together: their types and their IPv4s. */
export interface LocationCost {
  location: string;
  servers: number;
  /** Servers whose type price is unknown (not in the sums). */
  unpriced: number;
  serversHourly: number;
  /** Servers with a priced Primary IPv4 (in ipv4Hourly). */
  ipv4s: number;
  ipv4Hourly: number;
  hourly: number;
}

/** Sums servers (every one that exists: a failed bootstrap bills too) per location. */
export function costByLocation(servers: { location: string; hourlyGross?: number | null; ipv4HourlyGross?: number | null }[]): LocationCost[] {
  const by = new Map<string, LocationCost>();
  for (const s of servers) {
    const c = by.get(s.location) ?? { location: s.location, servers: 0, unpriced: 0, serversHourly: 0, ipv4s: 0, ipv4Hourly: 0, hourly: 0 };
    c.servers++;
    if (s.hourlyGross == null) c.unpriced++;
    c.serversHourly += s.hourlyGross ?? 0;
    if (s.ipv4HourlyGross != null) c.ipv4s++;
    c.ipv4Hourly += s.ipv4HourlyGross ?? 0;
    c.hourly = c.serversHourly + c.ipv4Hourly;
    by.set(s.location, c);
  }
  return [...by.values()].sort((a, b) => a.location.localeCompare(b.location));
}

/** `fsn1: 5 server(s) 0.0560 €/h + 5 Primary IPv4 0.0048 €/h = 0.0608 €/h (1.46 €/day)`. */
export function formatLocationCost(c: LocationCost): string {
  const unpriced = c.unpriced ? ` (${c.unpriced} without a price)` : '';
  return `${c.location}: ${c.servers} server(s)${unpriced} ${c.serversHourly.toFixed(4)} €/h + ${c.ipv4s} Primary IPv4 ${c.ipv4Hourly.toFixed(4)} €/h = ${c.hourly.toFixed(4)} €/h (${(c.hourly * 24).toFixed(2)} €/day)`;
}

/** What the recorded swarm costs, and what a run got for it. */
export interface SwarmCost {
  servers: number;
  /** Servers whose price the API did not give (not in hourlyGross). */
  unpriced: number;
  /** Gross € per hour of the priced servers together, their Primary IPv4s included. */
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
  const hourlyGross = priced.reduce((sum, s) => sum + s.hourlyGross! + (s.ipv4HourlyGross ?? 0), 0);
  return { servers: servers.length, unpriced: servers.length - priced.length, hourlyGross };
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
