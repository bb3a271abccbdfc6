import { join } from 'node:path';
import { ensureWorkerToken } from '../coordinator/credentials.js';
import { bootstrapHost, type BootstrapResult } from './bootstrap.js';
import { buildWorkerBundle, serverPlatform, type WorkerBundle } from './bundle.js';
import { SwarmConfigError } from './errors.js';
import { Fleet, type FleetOptions } from './fleet.js';
import { describeApiError, isApiError } from './hetzner/errors.js';
import type { HetznerAccount } from './hetzner/tokens.js';
import type { ServerType } from './hetzner/types.js';
import type { SwarmLog } from './log.js';
import { Provisioner } from './provision.js';
import { ipv4HourlyByLocation } from './cost.js';
import { candidateTypes, otherLocations, type TypeChoice } from './server-types.js';
import { KnownHosts } from './ssh.js';
import { ensureSshKeyPair, swarmDir, upsertServer, type SshKeyPair, type SwarmRecord, type SwarmServerRecord } from './state.js';
import { ensureCoordinatorCertificate } from './tls.js';

/** The host part of `HOST:PORT`, without the brackets of an IPv6 address. */
function directHost(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

export interface SwarmContext {
  stateDir: string;
  fleet: Fleet;
  base: Omit<SwarmRecord, 'servers'>;
  /** Server types to try, best first. */
  types: ServerType[];
  /** Other locations that sell a candidate type (named when this one refuses). */
  otherLocations: string[];
  /** Gross € per hour of a Primary IPv4, by location. */
  ipv4Hourly: Map<string, number>;
  keyPair: SshKeyPair;
  knownHosts: KnownHosts;
  workerToken: string;
  bundle: WorkerBundle;
  coordinatorCaPem: string | null;
  log: SwarmLog;
}

/**
 * Everything creating and bootstrapping servers needs, checked before anything is created: the
 * token works, the location exists, a server type can be ordered there, the worker bundle builds.
 */
export async function prepareSwarm(opts: FleetOptions & {
  stateDir: string;
  accounts: HetznerAccount[];
  base: Omit<SwarmRecord, 'servers'>;
  /** Default: the state directory's worker token. */
  workerToken?: string;
  log: SwarmLog;
}): Promise<SwarmContext> {
  const { base } = opts;
  const fleet = new Fleet(opts.accounts, opts);
  const first = fleet.projects[0]!.client;
  let locations;
  let types;
  let pricing;
  try {
    [locations, types, pricing] = await Promise.all([first.listLocations(), first.listServerTypes(), first.getPricing()]);
  } catch (err) {
    if (isApiError(err, 'unauthorized')) throw new SwarmConfigError(`the Hetzner API refused the token: ${describeApiError(err)}`);
    throw err;
  }
  if (!locations.some((l) => l.name === base.location)) {
    throw new SwarmConfigError(`unknown location "${base.location}"; locations: ${locations.map((l) => l.name).join(', ')}`);
  }
  const choice: TypeChoice = { requested: base.type, arch: base.arch ?? 'x86', ...(base.maxPrice !== undefined ? { maxPrice: base.maxPrice } : {}) };
  const candidates = candidateTypes(types, base.location, choice);
  const route = base.route;
  const cert = route.mode === 'direct' ? await ensureCoordinatorCertificate(opts.stateDir, directHost(route.address)) : null;
  return {
    stateDir: opts.stateDir,
    fleet,
    base,
    types: candidates,
    otherLocations: otherLocations(types, base.location, choice),
    ipv4Hourly: ipv4HourlyByLocation(pricing),
    keyPair: ensureSshKeyPair(opts.stateDir),
    knownHosts: new KnownHosts(join(swarmDir(opts.stateDir), 'known_hosts')),
    workerToken: opts.workerToken ?? (await ensureWorkerToken(opts.stateDir)),
    // A named type decides the architecture itself (`--type cax11`).
    bundle: await buildWorkerBundle(join(swarmDir(opts.stateDir), 'bundles'), undefined, serverPlatform(candidates[0]!.architecture)),
    coordinatorCaPem: cert?.certPem ?? null,
    log: opts.log,
  };
}

/** Bootstraps one recorded server and records what the host reported. */
export async function bootstrapRecord(ctx: SwarmContext, record: SwarmServerRecord, connectDeadline: number): Promise<BootstrapResult> {
  ctx.log({ server: record.name, ip: record.ip }, 'bootstrapping');
  const result = await bootstrapHost(
    { name: record.name, host: record.ip, port: ctx.base.sshPort },
    {
      privateKey: ctx.keyPair.privateKey,
      knownHosts: ctx.knownHosts,
      bundle: ctx.bundle,
      workerToken: ctx.workerToken,
      route: ctx.base.route,
      ...(ctx.coordinatorCaPem ? { coordinatorCaPem: ctx.coordinatorCaPem } : {}),
      connectDeadline,
      log: ctx.log,
    },
  );
  upsertServer(ctx.stateDir, ctx.base, { ...record, tunnelBind: result.tunnelBind, bundle: ctx.bundle.id });
  ctx.log({ server: record.name, ip: record.ip, worker: result.worker, uploaded: result.uploaded }, result.restarted ? 'worker started' : 'worker already running');
  return result;
}

export function newProvisioner(ctx: SwarmContext): Provisioner {
  return new Provisioner(ctx.fleet, {
    swarm: ctx.base.swarm,
    location: ctx.base.location,
    image: ctx.base.image,
    types: ctx.types,
    otherLocations: ctx.otherLocations,
    ipv4Hourly: ctx.ipv4Hourly,
    keyPair: ctx.keyPair,
    log: ctx.log,
  });
}
