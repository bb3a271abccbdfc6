import { HetznerClient, type HetznerClientOptions } from './hetzner/client.js';
import type { HetznerAccount } from './hetzner/tokens.js';
import type { Server } from './hetzner/types.js';
import { SwarmConfigError } from './errors.js';
import { SWARM_LABEL } from './state.js';

export interface FleetOptions {
  endpoint?: string;
  retry?: HetznerClientOptions['retry'];
  pollIntervalMs?: number;
  onRetry?: HetznerClientOptions['onRetry'];
}

export interface Project {
  account: HetznerAccount;
  client: HetznerClient;
}

export interface FleetServer {
  server: Server;
  project: Project;
}

/** Every Hetzner project of the configured tokens, in order. */
export class Fleet {
  readonly projects: Project[];

  constructor(accounts: HetznerAccount[], opts: FleetOptions = {}) {
    if (accounts.length === 0) {
      throw new SwarmConfigError('no Hetzner Cloud token: set HCLOUD_TOKEN (several projects: comma-separated) or put HCLOUD_TOKEN=… in ./.env');
    }
    this.projects = accounts.map((account) => ({
      account,
      client: new HetznerClient({
        token: account.token,
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        ...(opts.retry ? { retry: opts.retry } : {}),
        ...(opts.pollIntervalMs !== undefined ? { pollIntervalMs: opts.pollIntervalMs } : {}),
        ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
      }),
    }));
  }

  project(id: string): Project | undefined {
    return this.projects.find((p) => p.account.project === id);
  }

  /**
   * The servers of one swarm (or of every swarm) across all projects and pages. The label is checked
   * again on each server: nothing without it is ever returned, whatever the API's selector did.
   */
  async swarmServers(swarm?: string): Promise<FleetServer[]> {
    const selector = swarm === undefined ? SWARM_LABEL : `${SWARM_LABEL}=${swarm}`;
    const lists = await Promise.all(
      this.projects.map(async (project) => (await project.client.listServers(selector)).map((server) => ({ server, project }))),
    );
    return lists
      .flat()
      .filter(({ server }) => (swarm === undefined ? SWARM_LABEL in server.labels : server.labels[SWARM_LABEL] === swarm));
  }
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(lanes);
  return results;
}
