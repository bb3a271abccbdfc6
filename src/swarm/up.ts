import { bootstrapRecord, newProvisioner, prepareSwarm } from './context.js';
import { costByLocation, type LocationCost } from './cost.js';
import { SwarmConfigError } from './errors.js';
import { mapLimit, type FleetOptions } from './fleet.js';
import type { HetznerAccount } from './hetzner/tokens.js';
import type { SwarmLog } from './log.js';
import { toRecord, type Created } from './provision.js';
import type { Architecture } from './server-types.js';
import { SWARM_NAME_PATTERN, dropServer, readSwarm, serverName, upsertServer, writeSwarm, type CoordinatorRoute, type SwarmRecord, type SwarmServerRecord } from './state.js';

/** The loopback port on each host where the coordinator's reverse tunnel listens. */
export const DEFAULT_TUNNEL_PORT = 7443;

export interface UpOptions extends FleetOptions {
  stateDir: string;
  count: number;
  location: string;
  swarm: string;
  /** `auto` or a server type name. */
  type: string;
  /** The architecture `auto` picks from (default x86). */
  arch?: Architecture;
  /** `--max-price`: gross €/h a type may cost under `auto` (default 1.5× the cheapest orderable). */
  maxPrice?: number;
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
  /** Servers that run a worker. */
  running: number;
  /** What every server of the swarm that exists costs per hour (gross €, Primary IPv4 included): failed ones bill too. */
  hourlyGross: number;
  /** The same, per location. */
  cost: LocationCost[];
  /** Why servers are missing, each reason once (Hetzner's own message and what to do). */
  problems: string[];
}

function routeFor(opts: UpOptions): CoordinatorRoute {
  if (!opts.direct) return { mode: 'tunnel', port: opts.tunnelPort ?? DEFAULT_TUNNEL_PORT };
  if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(opts.direct)) throw new SwarmConfigError(`--direct must be HOST:PORT, got "${opts.direct}"`);
  return { mode: 'direct', address: opts.direct };
}

/**
 * `cah swarm up N LOCATION`: tops the swarm up to servers cah-<swarm>-1..N and makes every one of
 * them a running worker. Partial failures are reported per server; the rest goes on. Each server is
 * recorded as soon as Hetzner answers its create, so an interrupted run leaves nothing unrecorded.
 */
export async function swarmUp(opts: UpOptions): Promise<UpReport> {
  if (!SWARM_NAME_PATTERN.test(opts.swarm)) throw new SwarmConfigError(`swarm name "${opts.swarm}" must be lower-case letters, digits and dashes (at most 32)`);
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new SwarmConfigError(`N must be a positive integer, got ${opts.count}`);
  if (opts.maxPrice !== undefined && !(opts.maxPrice > 0)) throw new SwarmConfigError(`--max-price must be a positive €/h figure, got ${opts.maxPrice}`);
  const { log } = opts;
  const base: Omit<SwarmRecord, 'servers'> = {
    swarm: opts.swarm,
    location: opts.location,
    image: opts.image,
    type: opts.type,
    ...(opts.arch && opts.arch !== 'x86' ? { arch: opts.arch } : {}),
    ...(opts.maxPrice !== undefined ? { maxPrice: opts.maxPrice } : {}),
    sshPort: opts.sshPort ?? 22,
    route: routeFor(opts),
  };
  const ctx = await prepareSwarm({ ...opts, base });

  const existing = await ctx.fleet.swarmServers(opts.swarm);
  // Keep the record in step with the API: servers deleted elsewhere are dropped, unknown ones adopted.
  const previous = readSwarm(opts.stateDir, opts.swarm);
  writeSwarm(opts.stateDir, {
    ...base,
    servers: existing.map(({ server, project }) => ({ ...previous?.servers.find((s) => s.id === server.id), ...toRecord(server, project, opts.location, ctx.ipv4Hourly) })),
  });

  const outcomes = new Map<string, ServerOutcome>();
  const ready: { record: SwarmServerRecord; fresh: boolean }[] = [];
  for (const { server, project } of existing) {
    if (server.status !== 'running' || !server.public_net.ipv4) {
      outcomes.set(server.name, { name: server.name, status: 'failed', project: project.account.project, type: server.server_type.name, detail: `status ${server.status}` });
      continue;
    }
    outcomes.set(server.name, { name: server.name, status: 'existing', ip: server.public_net.ipv4.ip, project: project.account.project, type: server.server_type.name });
    ready.push({ record: toRecord(server, project, opts.location, ctx.ipv4Hourly), fresh: false });
  }
  const wanted = Array.from({ length: opts.count }, (_, i) => serverName(opts.swarm, i + 1));
  const extra = existing.filter(({ server }) => !wanted.includes(server.name)).map(({ server }) => server.name);
  if (extra.length) log({ servers: extra }, 'servers beyond N are kept (cah swarm down removes the whole swarm)');

  const missing = wanted.filter((name) => !outcomes.has(name));
  log({ swarm: opts.swarm, existing: existing.length, creating: missing.length, types: ctx.types.map((t) => t.name) }, 'topping up the swarm');
  const provisioner = newProvisioner(ctx);
  const record = (created: Extract<Created, { ok: true }>): void =>
    upsertServer(opts.stateDir, base, toRecord(created.server, created.project, opts.location, ctx.ipv4Hourly));
  const starting: Promise<void>[] = [];
  let lastFailure = '';
  for (const name of missing) {
    const created = await provisioner.create(name);
    if (!created.ok) {
      // Once per reason: fifteen servers refused for one limit are one line, not fifteen.
      if (created.detail !== lastFailure) log({ server: name, error: created.detail }, 'server not created');
      lastFailure = created.detail;
      outcomes.set(name, { name, status: 'failed', detail: created.detail });
      continue;
    }
    record(created);
    starting.push(
      provisioner.running(created, record).then((result) => {
        if (!result.ok) {
          outcomes.set(name, { name, status: 'failed', project: created.project.account.project, detail: result.detail });
          // Its failed create was deleted: nothing of it is left to record.
          if (!result.server) dropServer(opts.stateDir, opts.swarm, name);
          return;
        }
        upsertServer(opts.stateDir, base, result.record);
        // Hetzner reuses addresses: a host key pinned for an earlier server at this IP is stale.
        ctx.knownHosts.forget(result.record.ip, base.sshPort);
        outcomes.set(name, { name, status: 'created', ip: result.record.ip, project: result.record.project, type: result.record.type });
        ready.push({ record: result.record, fresh: true });
      }),
    );
  }
  await Promise.all(starting);

  const bootDeadline = Date.now() + (opts.bootTimeoutMs ?? 10 * 60_000);
  await mapLimit(ready, opts.concurrency ?? 8, async ({ record }) => {
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
  const recorded = readSwarm(opts.stateDir, opts.swarm)?.servers ?? [];
  for (const outcome of servers) {
    const price = recorded.find((r) => r.name === outcome.name)?.hourlyGross;
    if (price !== undefined) outcome.hourlyGross = price;
  }
  const cost = costByLocation(recorded);
  const problems = [...new Set(servers.filter((s) => s.status === 'failed' && s.detail).map((s) => s.detail!.replace(/^cah-[a-z0-9-]+: /, '')))];
  const ok = servers.every((s) => s.status !== 'failed') && wanted.every((name) => outcomes.has(name));
  return {
    swarm: opts.swarm,
    servers,
    ok,
    running: servers.filter((s) => s.status !== 'failed').length,
    hourlyGross: cost.reduce((sum, c) => sum + c.hourly, 0),
    cost,
    problems,
  };
}
