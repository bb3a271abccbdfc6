import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeApiError, isApiError } from './hetzner/errors.js';
import type { Action, Server, ServerType, SshKey } from './hetzner/types.js';
import type { Fleet, Project } from './fleet.js';
import type { SwarmLog } from './log.js';
import { swarmAsset } from './package-root.js';
import { ensureRegisteredKey } from './registered-key.js';
import { hourlyPrice } from './server-types.js';
import { SWARM_LABEL, type SshKeyPair, type SwarmServerRecord } from './state.js';

/** Hetzner limits user_data to 32 KiB. */
const USER_DATA_LIMIT = 32 * 1024;

/** The cloud-init user data of every swarm server (swarm/cloud-init.yaml: no secret in it). */
export function cloudInitUserData(): string {
  const text = readFileSync(swarmAsset('cloud-init.yaml'), 'utf8');
  if (Buffer.byteLength(text) > USER_DATA_LIMIT) throw new Error('swarm/cloud-init.yaml is larger than the 32 KiB Hetzner accepts');
  return text;
}

export interface ProvisionSpec {
  swarm: string;
  location: string;
  image: string;
  /** The types to try, best first (see candidateTypes). */
  types: ServerType[];
  keyPair: SshKeyPair;
  log: SwarmLog;
  /** How long a new server may take to reach `running`. */
  runningTimeoutMs?: number;
}

export type Created = { ok: true; name: string; project: Project; server: Server; action: Action } | { ok: false; detail: string };
export type Running = { ok: true; record: SwarmServerRecord } | { ok: false; detail: string };

/**
 * Creates swarm servers across the fleet's projects: the first project until Hetzner answers
 * `resource_limit_exceeded`, then the next; a type out of capacity (`resource_unavailable`,
 * `placement_error`) is skipped for the next candidate. Never deletes or changes a server.
 */
export class Provisioner {
  private projectIndex = 0;
  private readonly unavailableTypes = new Set<string>();
  private readonly keys = new Map<string, Promise<SshKey>>();

  constructor(private readonly fleet: Fleet, private readonly spec: ProvisionSpec) {}

  private key(project: Project): Promise<SshKey> {
    let key = this.keys.get(project.account.project);
    if (!key) {
      key = ensureRegisteredKey(project.client, this.spec.swarm, this.spec.keyPair);
      key.catch(() => this.keys.delete(project.account.project));
      this.keys.set(project.account.project, key);
    }
    return key;
  }

  /** Asks for the server `name`; call one at a time, so that a quota or capacity answer steers the next. */
  async create(name: string): Promise<Created> {
    const { log } = this.spec;
    for (;;) {
      const project = this.fleet.projects[this.projectIndex];
      if (!project) return { ok: false, detail: `every project is at its server limit (${this.fleet.projects.length} token(s), resource_limit_exceeded)` };
      const type = this.spec.types.find((t) => !this.unavailableTypes.has(t.name));
      if (!type) return { ok: false, detail: `no server type available in ${this.spec.location} (tried ${this.spec.types.map((t) => t.name).join(', ')})` };
      try {
        const key = await this.key(project);
        const created = await project.client.createServer({
          name,
          server_type: type.name,
          image: this.spec.image,
          location: this.spec.location,
          ssh_keys: [String(key.id)],
          labels: { [SWARM_LABEL]: this.spec.swarm },
          user_data: cloudInitUserData(),
          start_after_create: true,
        });
        log({ server: name, id: created.server.id, type: type.name, project: project.account.project }, 'server created');
        return { ok: true, name, project, server: created.server, action: created.action };
      } catch (err) {
        if (isApiError(err, 'resource_limit_exceeded')) {
          log({ server: name, project: project.account.project }, 'project at its server limit: moving to the next token');
          this.projectIndex++;
          continue;
        }
        if (isApiError(err, 'resource_unavailable', 'placement_error') && this.spec.types.length > 1) {
          log({ server: name, type: type.name, error: describeApiError(err) }, 'server type unavailable: trying the next one');
          this.unavailableTypes.add(type.name);
          continue;
        }
        if (isApiError(err, 'uniqueness_error')) {
          return { ok: false, detail: `a server named ${name} already exists in project ${project.account.project} without the ${SWARM_LABEL}=${this.spec.swarm} label: left alone` };
        }
        return { ok: false, detail: `create: ${describeApiError(err)}` };
      }
    }
  }

  /** Waits until a created server runs with an IPv4 address. */
  async running(created: Extract<Created, { ok: true }>): Promise<Running> {
    const { project, server } = created;
    const timeoutMs = this.spec.runningTimeoutMs ?? 10 * 60_000;
    try {
      await project.client.waitForAction(created.action);
      const deadline = Date.now() + timeoutMs;
      let current = await project.client.getServer(server.id);
      while (current.status !== 'running' || !current.public_net.ipv4) {
        if (Date.now() > deadline) throw new Error(`status still ${current.status}`);
        await sleep(project.client.pollIntervalMs);
        current = await project.client.getServer(server.id);
      }
      return { ok: true, record: toRecord(current, project, this.spec.location) };
    } catch (err) {
      return { ok: false, detail: `created (id ${server.id}) but not running: ${describeApiError(err)}` };
    }
  }
}

export function toRecord(server: Server, project: Project, location?: string): SwarmServerRecord {
  const where = server.location?.name ?? location ?? '';
  const price = server.server_type ? hourlyPrice(server.server_type, where) : null;
  return {
    name: server.name,
    id: server.id,
    ip: server.public_net.ipv4?.ip ?? '',
    project: project.account.project,
    location: where,
    type: server.server_type?.name ?? '',
    created: server.created,
    ...(price !== null ? { hourlyGross: price } : {}),
  };
}
