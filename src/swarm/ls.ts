import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ipv4HourlyByLocation } from './cost.js';
import { Fleet, type FleetOptions } from './fleet.js';
import type { HetznerAccount } from './hetzner/tokens.js';
import { hourlyPrice } from './server-types.js';
import { SWARM_LABEL } from './state.js';

/** A swarm server's worker actor as the coordinator last recorded it. */
export interface ActorStatus {
  state: string;
  lastHeartbeat: number | null;
  deathCause: string | null;
}

/** How `ls` learns a server's actor state (its actor id is the server name). */
export type ActorLookup = (server: string) => ActorStatus | null;

export interface SwarmServerRow {
  name: string;
  swarm: string;
  id: number;
  ip: string;
  location: string;
  type: string;
  status: string;
  created: string;
  ageSeconds: number;
  /** Gross € per hour of the server's type where the API gives prices. */
  hourlyGross: number | null;
  /** Gross € per hour of its Primary IPv4 (billed with the server until it is deleted), from `GET /pricing`. */
  ipv4HourlyGross: number | null;
  project: string;
  actor: ActorStatus | null;
}

/** The coordinator's `actors` table (SQLite, read-only), or nothing when no coordinator has run here. */
export async function actorStatesFromStore(stateDir: string): Promise<ActorLookup> {
  const { Store, STATE_FILE } = await import('../store/state-file.js');
  if (!existsSync(join(stateDir, STATE_FILE))) return () => null;
  const store = Store.openInStateDir(stateDir, { readonly: true });
  try {
    const actors = new Map(store.actors.list().map((a) => [a.id, { state: a.state, lastHeartbeat: a.lastHeartbeat, deathCause: a.deathCause }]));
    return (server) => actors.get(server) ?? null;
  } finally {
    store.close();
  }
}

/** `cah swarm ls`: every cah server (of one swarm, or all) across the projects, joined with its actor. */
export async function listSwarm(opts: FleetOptions & { accounts: HetznerAccount[]; swarm?: string; actors: ActorLookup; now?: number }): Promise<SwarmServerRow[]> {
  const fleet = new Fleet(opts.accounts, opts);
  const now = opts.now ?? Date.now();
  // Without prices the listing still answers; the IPv4s are then unpriced.
  const [servers, pricing] = await Promise.all([fleet.swarmServers(opts.swarm), fleet.projects[0]!.client.getPricing().catch(() => null)]);
  const ipv4Hourly = pricing ? ipv4HourlyByLocation(pricing) : new Map<string, number>();
  return servers
    .map(({ server, project }) => ({
      name: server.name,
      swarm: server.labels[SWARM_LABEL] ?? '',
      id: server.id,
      ip: server.public_net.ipv4?.ip ?? '',
      location: server.location.name,
      type: server.server_type.name,
      status: server.status,
      created: server.created,
      ageSeconds: Math.max(0, Math.round((now - Date.parse(server.created)) / 1000)),
      hourlyGross: hourlyPrice(server.server_type, server.location.name),
      ipv4HourlyGross: server.public_net.ipv4 ? (ipv4Hourly.get(server.location.name) ?? null) : null,
      project: project.account.project,
      actor: opts.actors(server.name),
    }))
    .sort((a, b) => a.swarm.localeCompare(b.swarm) || a.name.localeCompare(b.name, 'en', { numeric: true }));
}
