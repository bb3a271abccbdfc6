import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeApiError, explainApiError, isApiError } from './hetzner/errors.js';
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
  /** Other locations where a candidate type can be ordered (named when this one refuses). */
  otherLocations?: string[];
  /** Gross € per hour of a Primary IPv4, by location (recorded with each server). */
  ipv4Hourly?: Map<string, number>;
  keyPair: SshKeyPair;
  log: SwarmLog;
  /** How long a new server may take to reach `running`. */
  runningTimeoutMs?: number;
  /** Creates of one server whose create action failed (each failed server is deleted first). */
  maxCreateAttempts?: number;
}

export type Created = { ok: true; name: string; project: Project; server: Server; action: Action; nextActions: Action[]; attempt: number } | { ok: false; detail: string };
export type Running = { ok: true; record: SwarmServerRecord } | { ok: false; detail: string; server?: { id: number; project: Project } };

/** Errors that say the location has no room for this type now (sold out), not that the request is wrong. */
const CAPACITY_CODES = ['resource_unavailable', 'placement_error'];

/**
 * Creates swarm servers across the fleet's projects: the first project until Hetzner answers
 * `resource_limit_exceeded`, then the next (another account's project; one of the same account adds
 * nothing, the limits being per account); a type out of capacity is skipped for the next candidate,
 * and when none is left the location is given up with the locations that still sell them. A server
 * whose create action fails is deleted and created again.
 */
export class Provisioner {
  private projectIndex = 0;
  private readonly unavailableTypes = new Set<string>();
  private readonly keys = new Map<string, Promise<SshKey>>();
  /** Set once creating more cannot work (every project full, no type left): later creates fail at once. */
  private exhausted: string | null = null;
  /** The exhaustion came from account limits: deleting a server of ours frees a place again. */
  private exhaustedByLimit = false;

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

  private noTypeLeft(): string {
    const others = this.spec.otherLocations ?? [];
    const where = others.length ? `; locations that sell them now: ${others.join(', ')} (cah swarm up N LOCATION --name …)` : '';
    return `${this.spec.location} accepts no new server of ${this.spec.types.map((t) => t.name).join(', ')} now (sold out)${where}`;
  }

  /** Asks for the server `name`; call one at a time, so that a quota or capacity answer steers the next. */
  async create(name: string, attempt = 1): Promise<Created> {
    const { log } = this.spec;
    let lastLimit: unknown = null;
    for (;;) {
      if (this.exhausted) return { ok: false, detail: this.exhausted };
      const project = this.fleet.projects[this.projectIndex];
      if (!project) {
        this.exhausted = `not created: ${explainApiError(lastLimit)}`;
        this.exhaustedByLimit = true;
        continue;
      }
      const type = this.spec.types.find((t) => !this.unavailableTypes.has(t.name));
      if (!type) {
        this.exhausted = this.noTypeLeft();
        continue;
      }
      try {
        const key = await this.key(project);
        const created = await project.client.createServer({
          name,
          server_type: type.name,
          image: this.spec.image,
          location: this.spec.location,
          // Integer IDs, as the official clients send them: a string would be looked up as a key name.
          ssh_keys: [key.id],
          labels: { [SWARM_LABEL]: this.spec.swarm },
          user_data: cloudInitUserData(),
          start_after_create: true,
        });
        log({ server: name, id: created.server.id, type: type.name, project: project.account.project }, 'server created');
        return { ok: true, name, project, server: created.server, action: created.action, nextActions: created.next_actions ?? [], attempt };
      } catch (err) {
        if (isApiError(err, 'resource_limit_exceeded')) {
          log({ server: name, project: project.account.project, error: describeApiError(err) }, 'project at a limit: trying the next token');
          lastLimit = err;
          this.projectIndex++;
          continue;
        }
        if (isApiError(err, ...CAPACITY_CODES)) {
          log({ server: name, type: type.name, error: describeApiError(err) }, 'server type unavailable: trying the next one');
          this.unavailableTypes.add(type.name);
          continue;
        }
        if (isApiError(err, 'uniqueness_error')) {
          return { ok: false, detail: `a server named ${name} already exists in project ${project.account.project} without the ${SWARM_LABEL}=${this.spec.swarm} label: left alone` };
        }
        return { ok: false, detail: `create: ${explainApiError(err)}` };
      }
    }
  }

  /**
   * Waits until a created server runs with an IPv4 address: its create action and `next_actions`
   * (start_server) first, then its status. A failed create action gets the server deleted (it would
   * bill, labelled, forever) and created again, on another type where capacity was the cause.
   */
  async running(created: Extract<Created, { ok: true }>, onRecreated?: (again: Extract<Created, { ok: true }>) => void): Promise<Running> {
    const { project, server } = created;
    const timeoutMs = this.spec.runningTimeoutMs ?? 10 * 60_000;
    try {
      await project.client.waitForActions([created.action, ...created.nextActions]);
    } catch (err) {
      return this.retryFailedCreate(created, err, onRecreated);
    }
    try {
      const deadline = Date.now() + timeoutMs;
      let current = await project.client.getServer(server.id);
      for (let round = 0; current.status !== 'running' || !current.public_net.ipv4; round++) {
        if (Date.now() > deadline) throw new Error(`status still ${current.status}`);
        await sleep(Math.min(project.client.maxPollIntervalMs, project.client.pollIntervalMs * 2 ** round));
        current = await project.client.getServer(server.id);
      }
      return { ok: true, record: toRecord(current, project, this.spec.location, this.spec.ipv4Hourly) };
    } catch (err) {
      return { ok: false, detail: `created (id ${server.id}) but not running: ${describeApiError(err)}`, server: { id: server.id, project } };
    }
  }

  private async retryFailedCreate(created: Extract<Created, { ok: true }>, cause: unknown, onRecreated?: (again: Extract<Created, { ok: true }>) => void): Promise<Running> {
    const { project, server, name } = created;
    const why = describeApiError(cause);
    this.spec.log({ server: name, id: server.id, error: why }, 'create action failed: deleting the server');
    try {
      await project.client.waitForAction(await project.client.deleteServer(server.id));
    } catch (err) {
      if (!isApiError(err, 'not_found')) {
        return { ok: false, detail: `create failed (${why}) and the delete too: ${describeApiError(err)}`, server: { id: server.id, project } };
      }
    }
    if (/capacity|unavailable|placement/i.test(why)) this.unavailableTypes.add(server.server_type.name);
    if (this.exhaustedByLimit) {
      // The deleted server's place in its project is free again.
      this.exhausted = null;
      this.exhaustedByLimit = false;
      this.projectIndex = Math.max(0, this.fleet.projects.indexOf(project));
    }
    if (created.attempt >= (this.spec.maxCreateAttempts ?? 3)) return { ok: false, detail: `create failed ${created.attempt} times, last: ${why} (deleted)` };
    const again = await this.create(name, created.attempt + 1);
    if (!again.ok) return { ok: false, detail: again.detail };
    onRecreated?.(again);
    return this.running(again, onRecreated);
  }
}

export function toRecord(server: Server, project: Project, location?: string, ipv4Hourly?: Map<string, number>): SwarmServerRecord {
  const where = server.location?.name ?? location ?? '';
  const price = server.server_type ? hourlyPrice(server.server_type, where) : null;
  const ipv4 = server.public_net.ipv4 ? ipv4Hourly?.get(where) : undefined;
  return {
    name: server.name,
    id: server.id,
    ip: server.public_net.ipv4?.ip ?? '',
    project: project.account.project,
    location: where,
    type: server.server_type?.name ?? '',
    created: server.created,
    ...(price !== null ? { hourlyGross: price } : {}),
    ...(ipv4 !== undefined ? { ipv4HourlyGross: ipv4 } : {}),
  };
}
