import { join } from 'node:path';
import { SwarmConfigError } from './errors.js';
import { Fleet, mapLimit, type FleetOptions, type FleetServer } from './fleet.js';
import { describeApiError, isApiError } from './hetzner/errors.js';
import type { HetznerAccount } from './hetzner/tokens.js';
import type { SwarmLog } from './log.js';
import { removeKeyIfUnused } from './registered-key.js';
import { KnownHosts } from './ssh.js';
import { SWARM_NAME_PATTERN, dropServer, readSshKeyPair, readSwarm, removeSwarm, swarmDir } from './state.js';

export interface DownOptions extends FleetOptions {
  stateDir: string;
  swarm: string;
  accounts: HetznerAccount[];
  dryRun: boolean;
  /** Asked with the servers about to be deleted; false aborts before anything is deleted. */
  confirm?: (servers: DownTarget[]) => Promise<boolean>;
  concurrency?: number;
  log: SwarmLog;
}

export interface DownTarget {
  name: string;
  id: number;
  ip: string;
  project: string;
}

export interface DownReport {
  swarm: string;
  dryRun: boolean;
  aborted: boolean;
  /** Deleted (or, with dryRun, to be deleted). */
  servers: DownTarget[];
  failed: (DownTarget & { detail: string })[];
  /** SSH keys removed, as `name (project)`. */
  keysRemoved: string[];
}

function target({ server, project }: FleetServer): DownTarget {
  return { name: server.name, id: server.id, ip: server.public_net.ipv4?.ip ?? '', project: project.account.project };
}

/**
 * `cah swarm down`: deletes exactly the servers labelled `cah-swarm=<swarm>` in every project (all
 * pages), waits for the delete actions, forgets their host keys and removes cah's SSH key from
 * projects left without cah servers. Nothing else is touched. Running it again finds nothing to do.
 */
export async function swarmDown(opts: DownOptions): Promise<DownReport> {
  if (!SWARM_NAME_PATTERN.test(opts.swarm)) throw new SwarmConfigError(`invalid swarm name "${opts.swarm}"`);
  const fleet = new Fleet(opts.accounts, opts);
  const found = await fleet.swarmServers(opts.swarm);
  const targets = found.map(target);
  const report: DownReport = { swarm: opts.swarm, dryRun: opts.dryRun, aborted: false, servers: [], failed: [], keysRemoved: [] };
  if (opts.dryRun) return { ...report, servers: targets };
  if (targets.length > 0 && opts.confirm && !(await opts.confirm(targets))) return { ...report, aborted: true };

  const record = readSwarm(opts.stateDir, opts.swarm);
  const sshPort = record?.sshPort ?? 22;
  const knownHosts = new KnownHosts(join(swarmDir(opts.stateDir), 'known_hosts'));
  await mapLimit(found, opts.concurrency ?? 8, async (entry) => {
    const t = target(entry);
    try {
      try {
        const action = await entry.project.client.deleteServer(entry.server.id);
        await entry.project.client.waitForAction(action);
      } catch (err) {
        // Already gone: the goal of a delete.
        if (!isApiError(err, 'not_found')) throw err;
      }
      report.servers.push(t);
      knownHosts.forget(t.ip, sshPort);
      // Reported once, in the result (the CLI prints each deletion from it), not also as progress.
      dropServer(opts.stateDir, opts.swarm, t.name);
    } catch (err) {
      report.failed.push({ ...t, detail: describeApiError(err) });
      opts.log({ server: t.name, error: describeApiError(err) }, 'delete failed');
    }
  });

  if (report.failed.length === 0) removeSwarm(opts.stateDir, opts.swarm);
  const pair = readSshKeyPair(opts.stateDir);
  if (report.failed.length === 0 && pair) {
    for (const project of fleet.projects) {
      try {
        const removed = await removeKeyIfUnused(project.client, pair);
        if (removed) report.keysRemoved.push(`${removed.name} (${project.account.project})`);
      } catch (err) {
        opts.log({ project: project.account.project, error: describeApiError(err) }, 'could not remove the SSH key');
      }
    }
  }
  report.servers.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  return report;
}
