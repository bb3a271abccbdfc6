import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WORKER_CTL } from './bootstrap.js';
import type { FleetOptions } from './fleet.js';
import { describeApiError, isApiError } from './hetzner/errors.js';
import { hetznerEndpoint, loadHetznerAccounts, type HetznerAccount } from './hetzner/tokens.js';
import type { SwarmLog } from './log.js';
import { KnownHosts } from './ssh.js';
import { dropServer, listSwarms, readSshKeyPair, swarmDir, upsertServer, type SwarmRecord, type SwarmServerRecord } from './state.js';
import { HostLink } from './tunnel.js';
import { bootstrapRecord, newProvisioner, prepareSwarm } from './context.js';

export interface SwarmActorEvent {
  server: string;
  /** The server's address (the actor's host). */
  ip: string;
  state: 'PENDING_CREATION' | 'ALIVE' | 'RESTARTING' | 'DEAD';
  cause?: string;
}

export interface SwarmSupervisorOptions {
  stateDir: string;
  /** Where the tunnels lead: each connection a worker opens through its tunnel is handed here (the coordinator's gRPC server). */
  serveConnection: (connection: Duplex) => void;
  workerToken: string;
  /** Only these swarms (default: every swarm recorded in the state directory). */
  swarmNames?: string[];
  /** A server whose worker stays dead this long is deleted and recreated; 0 never (default 10 min). */
  replaceAfterMs?: number;
  log: SwarmLog;
  /** Whether the coordinator sees the server's worker actor (its id is the server name) ALIVE. */
  isWorkerAlive: (server: string) => boolean;
  /**
   * Actor states the supervisor knows before the coordinator does: PENDING_CREATION for a swarm
   * server whose worker has not registered yet, RESTARTING, DEAD and PENDING_CREATION around a
   * replacement (`cah gpu` records them in the actors table).
   */
  onActorEvent?: (event: SwarmActorEvent) => void;
  /** A dead worker is restarted over SSH after this long (default 60 s). */
  restartAfterMs?: number;
  /** How often workers are checked and the state directory is re-read for new servers (default 5 s). */
  checkIntervalMs?: number;
  /** Hetzner tokens for replacements (default HCLOUD_TOKEN / .env; none: servers are restarted, never replaced). */
  accounts?: HetznerAccount[];
  fleet?: FleetOptions;
}

interface Watch {
  swarm: SwarmRecord;
  server: SwarmServerRecord;
  link: HostLink;
  deadSince: number | null;
  restarted: boolean;
  replacing: boolean;
}

/**
 * `cah gpu`'s hold on the swarm: for every recorded server an SSH link with the reverse tunnel to the
 * coordinator's port (reopened when it drops); a worker that stays dead is restarted over SSH, and
 * after `replaceAfterMs` its server is deleted and recreated (Crawling@Home's respawn, automatic).
 */
export class SwarmSupervisor {
  private readonly watches = new Map<string, Watch>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly knownHosts: KnownHosts;
  /** Restarts and replacements under way. */
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly opts: SwarmSupervisorOptions) {
    this.knownHosts = new KnownHosts(join(swarmDir(opts.stateDir), 'known_hosts'));
  }

  async start(): Promise<void> {
    this.rescan();
    this.timer = setInterval(() => this.check(), this.opts.checkIntervalMs ?? 5000);
    this.timer.unref();
  }

  servers(): { name: string; ip: string; tunnel: 'open' | 'down' }[] {
    return [...this.watches.values()].map((w) => ({ name: w.server.name, ip: w.server.ip, tunnel: w.link.isOpen ? 'open' : 'down' }));
  }

  /** Closes every link; a restart or replacement under way gets up to 15 s to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.race([Promise.allSettled([...this.inflight]), sleep(15_000, undefined, { ref: false })]);
    await Promise.all([...this.watches.values()].map((w) => w.link.close()));
    this.watches.clear();
  }

  private track(task: Promise<void>): void {
    this.inflight.add(task);
    void task.finally(() => this.inflight.delete(task));
  }

  private emit(event: SwarmActorEvent): void {
    this.opts.log({ ...event }, `swarm actor ${event.state}`);
    this.opts.onActorEvent?.(event);
  }

  /** Links for new servers in the state directory; closes links of servers no longer there or moved. */
  private rescan(): void {
    if (this.stopped) return;
    const pair = readSshKeyPair(this.opts.stateDir);
    const wanted = new Map<string, { swarm: SwarmRecord; server: SwarmServerRecord }>();
    for (const swarm of listSwarms(this.opts.stateDir)) {
      if (this.opts.swarmNames && !this.opts.swarmNames.includes(swarm.swarm)) continue;
      for (const server of swarm.servers) if (server.ip) wanted.set(server.name, { swarm, server });
    }
    for (const [name, watch] of this.watches) {
      const next = wanted.get(name);
      if (watch.replacing) continue;
      if (!next || next.server.id !== watch.server.id || next.server.tunnelBind !== watch.server.tunnelBind) {
        void watch.link.close();
        this.watches.delete(name);
      }
    }
    if (!pair) return;
    for (const [name, { swarm, server }] of wanted) {
      if (this.watches.has(name)) continue;
      const link = new HostLink({
        target: { name, host: server.ip, port: swarm.sshPort },
        privateKey: pair.privateKey,
        knownHosts: this.knownHosts,
        tunnel: swarm.route.mode === 'tunnel' ? { bind: server.tunnelBind ?? '127.0.0.1', port: swarm.route.port, serve: this.opts.serveConnection } : null,
        log: this.opts.log,
      });
      this.watches.set(name, { swarm, server, link, deadSince: null, restarted: false, replacing: false });
      link.start();
      if (!this.opts.isWorkerAlive(name)) this.emit({ server: name, ip: server.ip, state: 'PENDING_CREATION', cause: `swarm server ${server.ip}: waiting for its worker` });
    }
  }

  private check(): void {
    if (this.stopped) return;
    this.rescan();
    const now = Date.now();
    const restartAfter = this.opts.restartAfterMs ?? 60_000;
    const replaceAfter = this.opts.replaceAfterMs ?? 10 * 60_000;
    for (const watch of this.watches.values()) {
      if (watch.replacing) continue;
      const name = watch.server.name;
      if (this.opts.isWorkerAlive(name)) {
        watch.deadSince = null;
        watch.restarted = false;
        continue;
      }
      watch.deadSince ??= now;
      const deadFor = now - watch.deadSince;
      if (replaceAfter > 0 && deadFor >= replaceAfter) {
        this.track(this.replace(watch));
      } else if (deadFor >= restartAfter && !watch.restarted && watch.link.isOpen) {
        watch.restarted = true;
        this.track(this.restart(watch));
      }
    }
  }

  private async restart(watch: Watch): Promise<void> {
    const name = watch.server.name;
    this.emit({ server: name, ip: watch.server.ip, state: 'RESTARTING', cause: 'worker not alive: restarting it over SSH' });
    try {
      const res = await watch.link.exec(`sh ${WORKER_CTL} restart`);
      if (res.code !== 0) throw new Error(res.stderr.trim() || `exit code ${res.code}`);
    } catch (err) {
      this.opts.log({ server: name, error: (err as Error).message }, 'worker restart failed');
    }
  }

  private async replace(watch: Watch): Promise<void> {
    const { swarm, server } = watch;
    const accounts = this.opts.accounts ?? loadHetznerAccounts();
    const project = accounts.find((a) => a.project === server.project);
    if (!project) {
      // Without the token of its project the server can only be restarted; try again later.
      this.opts.log({ server: server.name, project: server.project }, 'cannot replace the server: no Hetzner token for its project');
      watch.deadSince = Date.now();
      watch.restarted = false;
      return;
    }
    watch.replacing = true;
    this.emit({ server: server.name, ip: server.ip, state: 'DEAD', cause: 'worker did not come back: replacing the server' });
    try {
      const endpoint = this.opts.fleet?.endpoint ?? hetznerEndpoint();
      const ctx = await prepareSwarm({
        ...this.opts.fleet,
        ...(endpoint ? { endpoint } : {}),
        stateDir: this.opts.stateDir,
        accounts: [project, ...accounts.filter((a) => a !== project)],
        base: {
          swarm: swarm.swarm,
          location: swarm.location,
          image: swarm.image,
          type: swarm.type,
          ...(swarm.arch ? { arch: swarm.arch } : {}),
          ...(swarm.maxPrice !== undefined ? { maxPrice: swarm.maxPrice } : {}),
          sshPort: swarm.sshPort,
          route: swarm.route,
        },
        workerToken: this.opts.workerToken,
        log: this.opts.log,
      });
      const client = ctx.fleet.projects[0]!.client;
      try {
        await client.waitForAction(await client.deleteServer(server.id));
      } catch (err) {
        if (!isApiError(err, 'not_found')) throw err;
      }
      await watch.link.close();
      this.knownHosts.forget(server.ip, swarm.sshPort);
      dropServer(this.opts.stateDir, swarm.swarm, server.name);
      this.emit({ server: server.name, ip: server.ip, state: 'PENDING_CREATION', cause: 'server replaced' });
      const provisioner = newProvisioner(ctx);
      const created = await provisioner.create(server.name);
      if (!created.ok) throw new Error(created.detail);
      const running = await provisioner.running(created);
      if (!running.ok) throw new Error(running.detail);
      upsertServer(this.opts.stateDir, ctx.base, running.record);
      // A new server: a key pinned for an earlier one at its (reused) address is stale.
      this.knownHosts.forget(running.record.ip, swarm.sshPort);
      await bootstrapRecord(ctx, running.record, Date.now() + 10 * 60_000);
    } catch (err) {
      this.opts.log({ server: server.name, error: describeApiError(err) }, 'server replacement failed');
      this.emit({ server: server.name, ip: server.ip, state: 'DEAD', cause: `replacement failed: ${describeApiError(err)}` });
    } finally {
      this.watches.delete(server.name);
      void watch.link.close();
      this.rescan();
    }
  }
}
