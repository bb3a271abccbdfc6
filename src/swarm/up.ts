import { bootstrapRecord, newProvisioner, prepareSwarm } from './context.js';
import { SwarmConfigError } from './errors.js';
import { mapLimit, type FleetOptions } from './fleet.js';
import type { HetznerAccount } from './hetzner/tokens.js';
import type { SwarmLog } from './log.js';
import { toRecord } from './provision.js';
import { hourlyPrice } from './server-types.js';
import { SWARM_NAME_PATTERN, readSwarm, serverName, upsertServer, writeSwarm, type CoordinatorRoute, type SwarmRecord, type SwarmServerRecord } from './state.js';

/** The loopback port on each host where the coordinator's reverse tunnel listens. */
export const DEFAULT_TUNNEL_PORT = 7443;

export interface UpOptions extends FleetOptions {
  stateDir: string;
  count: number;
  location: string;
  swarm: string;
  /** `auto` or a server type name. */
  type: string;
  image: string;
  accounts: HetznerAccount[];
  /** The hosts' SSH port (22; the test stand-in's hosts use another). */
  sshPort?: number;
  /** `HOST:PORT`: workers dial the coordinator over TLS instead of through a tunnel. */
  direct?: string;
  tunnelPort?: number;
  /** How long a new server may take to accept SSH. */
  bootTimeoutMs?: number;
  concurrency?: number;
  log: SwarmLog;
}

export interface ServerOutcome {
  name: string;
  status: 'created' | 'existing' | 'failed';
  ip?: string;
  project?: string;
  type?: string;
  /** Gross € per hour of the server's type in this location, from the API's prices. */
  hourlyGross?: number;
  /** What went wrong, or what the bootstrap did. */
  detail?: string;
}

export interface UpReport {
  swarm: string;
  servers: ServerOutcome[];
  /** Every server of 1..N exists and runs a worker. */
  ok: boolean;
  /** What the swarm's servers cost per hour together (gross €, where the API gives prices). */
  hourlyGross: number;
}

function routeFor(opts: UpOptions): CoordinatorRoute {
  if (!opts.direct) return { mode: 'tunnel', port: opts.tunnelPort ?? DEFAULT_TUNNEL_PORT };
  if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(opts.direct)) throw new SwarmConfigError(`--direct must be HOST:PORT, got "${opts.direct}"`);
  return { mode: 'direct', address: opts.direct };
}

/**
 * `cah swarm up N LOCATION`: tops the swarm up to servers cah-<swarm>-1..N and makes every one of
 * them a running worker. Partial failures are reported per server; the rest goes on.
 */
export async function swarmUp(opts: UpOptions): Promise<UpReport> {
  if (!SWARM_NAME_PATTERN.test(opts.swarm)) throw new SwarmConfigError(`swarm name "${opts.swarm}" must be lower-case letters, digits and dashes (at most 32)`);
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new SwarmConfigError(`N must be a positive integer, got ${opts.count}`);
  const { log } = opts;
  const base: Omit<SwarmRecord, 'servers'> = {
    swarm: opts.swarm,
    location: opts.location,
    image: opts.image,
    type: opts.type,
    sshPort: opts.sshPort ?? 22,
    route: routeFor(opts),
  };
  const ctx = await prepareSwarm({ ...opts, base });

  const existing = await ctx.fleet.swarmServers(opts.swarm);
  // Keep the record in step with the API: servers deleted elsewhere are dropped, unknown ones adopted.
  const previous = readSwarm(opts.stateDir, opts.swarm);
  writeSwarm(opts.stateDir, {
    ...base,
    servers: existing.map(({ server, project }) => ({ ...previous?.servers.find((s) => s.id === server.id), ...toRecord(server, project) })),
  });

  const outcomes = new Map<string, ServerOutcome>();
  const ready: SwarmServerRecord[] = [];
  for (const { server, project } of existing) {
    if (server.status !== 'running' || !server.public_net.ipv4) {
      outcomes.set(server.name, { name: server.name, status: 'failed', project: project.account.project, detail: `status ${server.status}` });
      continue;
    }
    outcomes.set(server.name, { name: server.name, status: 'existing', ip: server.public_net.ipv4.ip, project: project.account.project, type: server.server_type.name });
    ready.push(toRecord(server, project));
  }
  const wanted = Array.from({ length: opts.count }, (_, i) => serverName(opts.swarm, i + 1));
  const extra = existing.filter(({ server }) => !wanted.includes(server.name)).map(({ server }) => server.name);
  if (extra.length) log({ servers: extra }, 'servers beyond N are kept (cah swarm down removes the whole swarm)');

  const missing = wanted.filter((name) => !outcomes.has(name));
  log({ swarm: opts.swarm, existing: existing.length, creating: missing.length, types: ctx.types.map((t) => t.name) }, 'topping up the swarm');
  const provisioner = newProvisioner(ctx);
  const starting: Promise<void>[] = [];
  for (const name of missing) {
    const created = await provisioner.create(name);
    if (!created.ok) {
      log({ server: name, error: created.detail }, 'server not created');
      outcomes.set(name, { name, status: 'failed', detail: created.detail });
      continue;
    }
    starting.push(
      provisioner.running(created).then((result) => {
        if (!result.ok) {
          outcomes.set(name, { name, status: 'failed', project: created.project.account.project, detail: result.detail });
          return;
        }
        upsertServer(opts.stateDir, base, result.record);
        outcomes.set(name, { name, status: 'created', ip: result.record.ip, project: result.record.project, type: result.record.type });
        ready.push(result.record);
      }),
    );
  }
  await Promise.all(starting);

  const bootDeadline = Date.now() + (opts.bootTimeoutMs ?? 10 * 60_000);
  await mapLimit(ready, opts.concurrency ?? 8, async (record) => {
    const outcome = outcomes.get(record.name)!;
    try {
      const result = await bootstrapRecord(ctx, record, bootDeadline);
      outcome.detail = `worker ${result.worker}${result.restarted ? ' (started)' : ''}`;
    } catch (err) {
      outcome.status = 'failed';
      outcome.detail = `bootstrap: ${(err as Error).message}`;
      log({ server: record.name, error: (err as Error).message }, 'bootstrap failed');
    }
  });

  const servers = [...outcomes.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const prices = new Map<string, number | null>();
  for (const type of ctx.types) prices.set(type.name, hourlyPrice(type, opts.location));
  for (const { server } of existing) if (!prices.get(server.server_type.name)) prices.set(server.server_type.name, hourlyPrice(server.server_type, opts.location));
  let hourlyGross = 0;
  for (const outcome of servers) {
    const price = outcome.type ? prices.get(outcome.type) : null;
    if (price === null || price === undefined) continue;
    outcome.hourlyGross = price;
    if (outcome.status !== 'failed') hourlyGross += price;
  }
  const ok = servers.every((s) => s.status !== 'failed') && wanted.every((name) => outcomes.has(name));
  return { swarm: opts.swarm, servers, ok, hourlyGross };
}
