import { createHash, randomInt } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HetznerSpec } from './hetzner-spec.js';
import { LabelSelectorError, parseLabelSelector } from './label-selector.js';
import { SshdHost } from './sshd-host.js';

/**
 * A Hetzner Cloud API stand-in built from the official OpenAPI spec: the endpoints cah uses, with
 * pagination, label selectors, rate limits, actions that finish after a delay, and the spec's error
 * shapes. Each request body and each response it sends is validated against the spec (ajv); any
 * mismatch lands in `violations`. A created server is a real host: an OpenSSH sshd on its own
 * loopback address that accepts the keys given at creation.
 */

export interface RateLimit {
  limit: number;
  /** Requests regained per second (Hetzner: limit/3600). */
  refillPerSecond: number;
}

export interface StandinOptions {
  /** Host roots and sshd files go here. */
  dir: string;
  /** Created servers get a real sshd host (else they are records only, on an address nothing listens on). */
  realHosts?: boolean;
  /** How long actions (create, delete) stay `running`. */
  actionDelayMs?: number;
  /** Default server limit of an account. */
  serverLimit?: number;
  /** Server types out of capacity everywhere: creating one answers 412 resource_unavailable. */
  unavailableTypes?: string[];
  /** Server types sold out per location (`{ fsn1: ['cx23'] }`): listed as sold there, but a create answers 412. */
  soldOut?: Record<string, string[]>;
  /** Servers by name that come up without a reachable host (nothing listens on their address). */
  unreachable?: string[];
}

interface StandinAction {
  id: number;
  command: string;
  status: 'running' | 'success' | 'error';
  started: string;
  finished: string | null;
  progress: number;
  resources: { id: number; type: string }[];
  error: { code: string; message: string } | null;
}

export interface StandinServer {
  id: number;
  name: string;
  status: string;
  created: string;
  labels: Record<string, string>;
  serverType: string;
  location: string;
  image: string;
  /** The cloud-init user data it was created with (checked for secrets). */
  userData: string;
  ip: string;
  host: SshdHost | null;
  /** The host's root directory (real hosts only). */
  root: string | null;
}

interface StandinSshKey {
  id: number;
  name: string;
  fingerprint: string;
  public_key: string;
  labels: Record<string, string>;
  created: string;
}

/** A Hetzner account: its limits hold for all its projects together (a second project's token adds no capacity). */
export interface StandinAccount {
  name: string;
  serverLimit: number;
  coreLimit: number;
  primaryIpLimit: number;
  projects: StandinProject[];
}

export interface StandinProject {
  token: string;
  account: StandinAccount;
  servers: Map<number, StandinServer>;
  sshKeys: Map<number, StandinSshKey>;
  rateLimit: RateLimit;
  /** Requests left in the bucket. */
  remaining: number;
  refilledAt: number;
}

export interface RecordedRequest {
  token: string;
  method: string;
  path: string;
  query: Record<string, string>;
  /** The JSON body, parsed (undefined without one). */
  body: unknown;
  status: number;
  at: number;
}

const LOCATIONS = [
  { id: 1, name: 'fsn1', description: 'Falkenstein DC Park 1', country: 'DE', city: 'Falkenstein', latitude: 50.47612, longitude: 12.370071, network_zone: 'eu-central' },
  { id: 2, name: 'nbg1', description: 'Nuremberg DC Park 1', country: 'DE', city: 'Nuremberg', latitude: 49.452102, longitude: 11.076665, network_zone: 'eu-central' },
  { id: 3, name: 'hel1', description: 'Helsinki DC Park 1', country: 'FI', city: 'Helsinki', latitude: 60.169855, longitude: 24.938379, network_zone: 'eu-central' },
  { id: 4, name: 'ash', description: 'Ashburn, VA', country: 'US', city: 'Ashburn, VA', latitude: 39.045821, longitude: -77.487073, network_zone: 'us-east' },
];

interface TypeSpec {
  id: number;
  name: string;
  cores: number;
  memory: number;
  disk: number;
  cpu_type: 'shared' | 'dedicated';
  architecture: 'x86' | 'arm';
  hourly: number;
  /** Deprecation announced; ordering ends at `unavailable_after` (past: refused). */
  deprecation: { announced: string; unavailable_after: string } | null;
  /** Locations where it is sold (the only ones listed). */
  available: string[];
}

const PAST = { announced: '2025-10-16T06:00:00+00:00', unavailable_after: '2026-01-15T06:00:00+00:00' };
const FUTURE = { announced: '2026-06-01T06:00:00+00:00', unavailable_after: '2099-01-01T06:00:00+00:00' };

/**
 * The catalogue: the old cx22 generation past its `unavailable_after` (and cheapest, so a naive pick
 * would take it), cpx11 deprecated but still sold, ARM next to x86, a dedicated type far dearer.
 */
const TYPES: TypeSpec[] = [
  { id: 22, name: 'cx22', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', architecture: 'x86', hourly: 0.006, deprecation: PAST, available: ['fsn1', 'nbg1', 'hel1'] },
  { id: 11, name: 'cpx11', cores: 2, memory: 2, disk: 40, cpu_type: 'shared', architecture: 'x86', hourly: 0.0063, deprecation: FUTURE, available: ['fsn1', 'nbg1', 'hel1', 'ash'] },
  { id: 101, name: 'cax11', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', architecture: 'arm', hourly: 0.0062, deprecation: null, available: ['fsn1', 'nbg1', 'hel1'] },
  { id: 103, name: 'cx23', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', architecture: 'x86', hourly: 0.0066, deprecation: null, available: ['fsn1', 'nbg1', 'hel1'] },
  { id: 104, name: 'cpx22', cores: 2, memory: 4, disk: 80, cpu_type: 'shared', architecture: 'x86', hourly: 0.0094, deprecation: null, available: ['fsn1', 'nbg1', 'hel1', 'ash'] },
  { id: 105, name: 'cpx32', cores: 4, memory: 8, disk: 160, cpu_type: 'shared', architecture: 'x86', hourly: 0.0192, deprecation: null, available: ['nbg1', 'ash'] },
  { id: 96, name: 'ccx13', cores: 2, memory: 8, disk: 80, cpu_type: 'dedicated', architecture: 'x86', hourly: 0.0232, deprecation: null, available: ['fsn1', 'nbg1', 'hel1', 'ash'] },
];

/** System images: one per name and architecture, as Hetzner has them. */
const IMAGE_NAMES: Record<string, { os_flavor: string; os_version: string; description: string }> = {
  'ubuntu-24.04': { os_flavor: 'ubuntu', os_version: '24.04', description: 'Ubuntu 24.04' },
  'ubuntu-22.04': { os_flavor: 'ubuntu', os_version: '22.04', description: 'Ubuntu 22.04' },
  'debian-12': { os_flavor: 'debian', os_version: '12', description: 'Debian 12' },
  'debian-13': { os_flavor: 'debian', os_version: '13', description: 'Debian 13' },
};
const IMAGES = Object.entries(IMAGE_NAMES).flatMap(([name, image], i) =>
  (['x86', 'arm'] as const).map((architecture, j) => ({ id: 160_000_000 + i * 10 + j, name, architecture, ...image })),
);

/** Primary IPv4 per hour (net), in every location. */
export const IPV4_HOURLY = 0.0008;
const EPOCH = '2016-01-30T23:50:00+00:00';

/** A price as the API writes it: net and gross (German VAT) as decimal strings. */
export function money(n: number): { net: string; gross: string } {
  return { net: n.toFixed(10), gross: (n * 1.19).toFixed(10) };
}

const pastUnavailable = (t: TypeSpec): boolean => t.deprecation !== null && Date.parse(t.deprecation.unavailable_after) < Date.now();

function serverTypeJson(t: TypeSpec): Record<string, unknown> {
  const sold = LOCATIONS.filter((l) => t.available.includes(l.name));
  return {
    id: t.id,
    name: t.name,
    description: t.name.toUpperCase(),
    category: t.cpu_type === 'dedicated' ? 'dedicated' : 'shared',
    cores: t.cores,
    memory: t.memory,
    disk: t.disk,
    deprecated: t.deprecation !== null,
    deprecation: t.deprecation,
    prices: sold.map((l) => ({
      location: l.name,
      price_hourly: money(t.hourly),
      price_monthly: money(t.hourly * 730),
      included_traffic: 21990232555520,
      price_per_tb_traffic: money(1),
    })),
    storage_type: 'local',
    cpu_type: t.cpu_type,
    architecture: t.architecture,
    locations: sold.map((l) => ({
      id: l.id,
      name: l.name,
      deprecation: t.deprecation,
      recommended: t.deprecation === null,
      available: !pastUnavailable(t),
    })),
  };
}

function imageJson(image: (typeof IMAGES)[number]): Record<string, unknown> {
  return {
    id: image.id,
    type: 'system',
    status: 'available',
    name: image.name,
    description: image.description,
    image_size: null,
    disk_size: 5,
    created: EPOCH,
    created_from: null,
    bound_to: null,
    os_flavor: image.os_flavor,
    os_version: image.os_version,
    rapid_deploy: true,
    protection: { delete: false },
    deprecated: null,
    deleted: null,
    labels: {},
    architecture: image.architecture,
  };
}

function pricingJson(): Record<string, unknown> {
  const byLocation = (hourly: number): Record<string, unknown>[] =>
    LOCATIONS.map((l) => ({ location: l.name, price_hourly: money(hourly), price_monthly: money(hourly * 730) }));
  return {
    currency: 'EUR',
    vat_rate: '19.00',
    primary_ips: [
      { type: 'ipv4', prices: byLocation(IPV4_HOURLY) },
      { type: 'ipv6', prices: byLocation(0) },
    ],
    floating_ips: [{ type: 'ipv4', prices: LOCATIONS.map((l) => ({ location: l.name, price_monthly: money(3) })) }],
    image: { price_per_gb_month: money(0.011) },
    volume: { price_per_gb_month: money(0.044) },
    server_backup: { percentage: '20.00' },
    server_types: TYPES.map((t) => ({ id: t.id, name: t.name, prices: serverTypeJson(t)['prices'] })),
    load_balancer_types: [],
    floating_ip: { price_monthly: money(3) },
  };
}

type Handler = (project: StandinProject, query: Record<string, string>, body: unknown, params: URLSearchParams) => [number, unknown];

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> | null = null) {
    super(message);
  }
}

function invalid(field: string, message: string): ApiError {
  return new ApiError(422, 'invalid_input', `invalid input in field '${field}': ${message}`, { fields: [{ name: field, messages: [message] }] });
}

/** The API's `sort` parameter: `field` or `field:asc|desc` (id, name, created). */
function sorted<T extends { id: number; name: string; created?: string }>(items: T[], sort: string | undefined): T[] {
  const [field = 'id', order = 'asc'] = (sort ?? 'id').split(':');
  if (!['id', 'name', 'created'].includes(field) || !['asc', 'desc'].includes(order)) throw invalid('sort', `cannot sort by ${sort}`);
  const key = (item: T): string | number => (field === 'id' ? item.id : field === 'name' ? item.name : (item.created ?? ''));
  const out = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return order === 'desc' ? out.reverse() : out;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

function checkLabels(labels: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(k) || k.startsWith('hetzner.cloud/') || !LABEL_VALUE.test(v)) {
      throw new ApiError(422, 'invalid_input', `invalid input in field 'labels': invalid label ${k}=${v}`, { fields: [{ name: 'labels', messages: ['invalid label'] }] });
    }
  }
}

function md5Fingerprint(publicKey: string): string | null {
  const parts = publicKey.trim().split(/\s+/);
  if (parts.length < 2 || !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+)$/.test(parts[0]!)) return null;
  const blob = Buffer.from(parts[1]!, 'base64');
  if (blob.length < 16) return null;
  return createHash('md5').update(blob).digest('hex').match(/../g)!.join(':');
}

async function freePort(address: string): Promise<number> {
  for (;;) {
    const port = randomInt(20_000, 30_000);
    const ok = await new Promise<boolean>((resolve) => {
      const server = createTcpServer();
      server.once('error', () => resolve(false));
      server.listen(port, address, () => server.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

export class HetznerStandin {
  readonly spec = new HetznerSpec();
  readonly projects = new Map<string, StandinProject>();
  readonly accounts = new Map<string, StandinAccount>();
  readonly requests: RecordedRequest[] = [];
  /** Spec violations of requests received and responses sent: a test asserts there are none. */
  readonly violations: string[] = [];
  /** Every server ever created (deleted ones included), for the tests' checks. */
  readonly allServers: StandinServer[] = [];
  url = '';
  /** The SSH port of every host (each host has its own address). */
  sshPort = 0;
  private http: HttpServer | null = null;
  private nextId = 1000;
  private nextActionId = 5000;
  private nextHost = 2;
  private readonly actions = new Map<number, StandinAction>();
  private readonly net: string;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly faults: { method: string; template: string; status: number; code: string; times: number }[] = [];
  private readonly actionFaults: { command: string; message: string }[] = [];

  constructor(readonly opts: StandinOptions) {
    // Its own 127.a.b.0/24, so that concurrently running tests do not meet.
    this.net = `127.${randomInt(16, 250)}.${randomInt(1, 250)}`;
  }

  static async start(opts: StandinOptions): Promise<HetznerStandin> {
    const standin = new HetznerStandin(opts);
    mkdirSync(opts.dir, { recursive: true });
    standin.sshPort = await freePort(`${standin.net}.1`);
    standin.http = createServer((req, res) => void standin.handle(req, res));
    await new Promise<void>((resolve) => standin.http!.listen(0, '127.0.0.1', resolve));
    const address = standin.http.address();
    if (typeof address !== 'object' || !address) throw new Error('no address');
    standin.url = `http://127.0.0.1:${address.port}/v1`;
    return standin;
  }

  /**
   * A project with its token. Projects naming the same `account` share its limits (servers, cores,
   * Primary IPs); without one, the project is alone in its account. The first project of an account
   * sets its limits.
   */
  addProject(token: string, opts: { serverLimit?: number; coreLimit?: number; primaryIpLimit?: number; account?: string; rateLimit?: RateLimit } = {}): StandinProject {
    const rateLimit = opts.rateLimit ?? { limit: 3600, refillPerSecond: 1 };
    const accountName = opts.account ?? `account-of-${token}`;
    let account = this.accounts.get(accountName);
    if (!account) {
      const serverLimit = opts.serverLimit ?? this.opts.serverLimit ?? 25;
      account = { name: accountName, serverLimit, coreLimit: opts.coreLimit ?? serverLimit * 8, primaryIpLimit: opts.primaryIpLimit ?? serverLimit * 2, projects: [] };
      this.accounts.set(accountName, account);
    }
    const project: StandinProject = {
      token,
      account,
      servers: new Map(),
      sshKeys: new Map(),
      rateLimit,
      remaining: rateLimit.limit,
      refilledAt: Date.now(),
    };
    account.projects.push(project);
    this.projects.set(token, project);
    return project;
  }

  project(token: string): StandinProject {
    const project = this.projects.get(token);
    if (!project) throw new Error('unknown project');
    return project;
  }

  /** A server that exists before the test (no sshd behind it unless `host`). */
  async seedServer(token: string, spec: { name: string; labels?: Record<string, string>; host?: boolean; keys?: string[] }): Promise<StandinServer> {
    const project = this.project(token);
    const server = this.newServer(project, { name: spec.name, labels: spec.labels ?? {}, serverType: 'cpx22', location: 'fsn1', image: 'ubuntu-24.04' });
    if (spec.host) await this.startHost(server, spec.keys ?? []);
    server.status = 'running';
    return server;
  }

  /** The next `times` requests to `method template` fail with this status and error code (before any effect). */
  failNext(method: string, template: string, status: number, code: string, times = 1): void {
    this.faults.push({ method, template, status, code, times });
  }

  /** The next action of this command ends in `error` (and has no effect). */
  failNextAction(command: string, message: string): void {
    this.actionFaults.push({ command, message });
  }

  /**
   * A server lost outside cah (hardware failure, deleted in the Console): its sshd and every process
   * under it die at once, and the API no longer knows it.
   */
  async destroyServer(name: string): Promise<StandinServer> {
    for (const project of this.projects.values()) {
      const server = [...project.servers.values()].find((s) => s.name === name);
      if (!server) continue;
      project.servers.delete(server.id);
      await server.host?.stop();
      server.host = null;
      return server;
    }
    throw new Error(`no server ${name}`);
  }

  /** The address the next server will get (Hetzner reuses the addresses of deleted servers). */
  nextIp(): string {
    return `${this.net}.${this.nextHost}`;
  }

  /** Real hosts that are still up. */
  liveHosts(): SshdHost[] {
    return this.allServers.map((s) => s.host).filter((h): h is SshdHost => h !== null);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await Promise.all(this.liveHosts().map((h) => h.stop()));
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
    this.http?.closeAllConnections();
    rmSync(this.opts.dir, { recursive: true, force: true });
  }

  private newServer(project: StandinProject, spec: { name: string; labels: Record<string, string>; serverType: string; location: string; image: string; userData?: string }): StandinServer {
    const server: StandinServer = {
      id: this.nextId++,
      name: spec.name,
      status: 'initializing',
      created: new Date().toISOString().replace(/\.\d+Z$/, '+00:00'),
      labels: spec.labels,
      serverType: spec.serverType,
      location: spec.location,
      image: spec.image,
      userData: spec.userData ?? '',
      ip: `${this.net}.${this.nextHost++}`,
      host: null,
      root: null,
    };
    project.servers.set(server.id, server);
    this.allServers.push(server);
    return server;
  }

  private async startHost(server: StandinServer, keys: string[]): Promise<void> {
    server.root = join(this.opts.dir, `server-${server.id}`);
    server.host = await SshdHost.start({ root: server.root, configDir: join(this.opts.dir, `sshd-${server.id}`), address: server.ip, port: this.sshPort, authorizedKeys: keys });
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise));
    return promise;
  }

  /** An action that is `running` until `work` settles and the delay has passed. */
  private startAction(command: string, resource: number, work: () => Promise<void>): StandinAction {
    const action: StandinAction = {
      id: this.nextActionId++,
      command,
      status: 'running',
      started: new Date().toISOString(),
      finished: null,
      progress: 0,
      resources: [{ id: resource, type: 'server' }],
      error: null,
    };
    this.actions.set(action.id, action);
    const fault = this.actionFaults.findIndex((f) => f.command === command);
    const effect = fault >= 0 ? Promise.reject(new Error(this.actionFaults.splice(fault, 1)[0]!.message)) : work();
    void this.track(
      Promise.all([effect, sleep(this.opts.actionDelayMs ?? 150)]).then(
        () => Object.assign(action, { status: 'success', progress: 100, finished: new Date().toISOString() }),
        (err: Error) => Object.assign(action, { status: 'error', progress: 100, finished: new Date().toISOString(), error: { code: 'action_failed', message: err.message } }),
      ),
    );
    return action;
  }

  private serverJson(s: StandinServer): Record<string, unknown> {
    const type = TYPES.find((t) => t.name === s.serverType)!;
    const location = LOCATIONS.find((l) => l.name === s.location)!;
    const image = IMAGES.find((i) => i.name === s.image && i.architecture === type.architecture)!;
    return {
      id: s.id,
      name: s.name,
      status: s.status,
      created: s.created,
      public_net: {
        ipv4: { id: s.id + 1, ip: s.ip, blocked: false, dns_ptr: `static.${s.ip}.clients.your-server.de` },
        ipv6: { id: s.id + 2, ip: `2001:db8:${s.id.toString(16)}::/64`, blocked: false, dns_ptr: [] },
        floating_ips: [],
        firewalls: [],
      },
      private_net: [],
      server_type: serverTypeJson(type),
      location,
      image: imageJson(image),
      iso: null,
      rescue_enabled: false,
      locked: false,
      backup_window: null,
      outgoing_traffic: 0,
      ingoing_traffic: 0,
      included_traffic: 21990232555520,
      protection: { delete: false, rebuild: false },
      labels: s.labels,
      volumes: [],
      load_balancers: [],
      primary_disk_size: type.disk,
      placement_group: null,
    };
  }

  private refill(project: StandinProject): void {
    const now = Date.now();
    const gained = ((now - project.refilledAt) / 1000) * project.rateLimit.refillPerSecond;
    project.remaining = Math.min(project.rateLimit.limit, project.remaining + gained);
    project.refilledAt = now;
  }

  private rateLimitHeaders(project: StandinProject): Record<string, string> {
    const missing = project.rateLimit.limit - project.remaining;
    const reset = Math.ceil(Date.now() / 1000 + missing / project.rateLimit.refillPerSecond);
    return {
      'RateLimit-Limit': String(project.rateLimit.limit),
      'RateLimit-Remaining': String(Math.floor(project.remaining)),
      'RateLimit-Reset': String(reset),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = req.method ?? 'GET';
    const query = Object.fromEntries(url.searchParams);
    const token = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    const project = this.projects.get(token);
    let template = '';
    let status = 500;
    let body: unknown;
    let sent: unknown;
    let headers: Record<string, string> = {};
    try {
      const raw = await new Promise<string>((resolve) => {
        let data = '';
        req.on('data', (chunk: Buffer) => (data += chunk.toString()));
        req.on('end', () => resolve(data));
      });
      if (!project) throw new ApiError(401, 'unauthorized', 'unable to authenticate');
      this.refill(project);
      if (project.remaining < 1) {
        headers = this.rateLimitHeaders(project);
        throw new ApiError(429, 'rate_limit_exceeded', 'limit of requests per hour reached');
      }
      project.remaining -= 1;
      headers = this.rateLimitHeaders(project);
      let json: unknown;
      if (raw) {
        try {
          json = JSON.parse(raw);
          sent = json;
        } catch {
          throw new ApiError(400, 'json_error', 'invalid JSON input in your request');
        }
      }
      const route = this.route(method, url.pathname);
      template = route.template;
      const fault = this.faults.find((f) => f.method === method && f.template === template && f.times > 0);
      if (fault) {
        fault.times--;
        throw new ApiError(fault.status, fault.code, `injected ${fault.code}`);
      }
      const problems = this.spec.request(method, template, json);
      if (problems.length) {
        this.violations.push(`request ${method} ${template}: ${problems.join('; ')}`);
        throw new ApiError(422, 'invalid_input', `invalid input: ${problems.join('; ')}`, { fields: [] });
      }
      [status, body] = await route.run(project, query, json, url.searchParams);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'server_error', (err as Error).message);
      status = e.status;
      body = { error: { code: e.code, message: e.message, details: e.details } };
    }
    if (template) {
      const problems = this.spec.response(method, template, status, body);
      if (problems.length) this.violations.push(`response ${status} ${method} ${template}: ${problems.join('; ')}`);
    }
    this.requests.push({ token, method, path: url.pathname, query, body: sent, status, at: Date.now() });
    res.writeHead(status, { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }

  private route(method: string, pathname: string): { template: string; run: Handler } {
    const path = pathname.replace(/^\/v1/, '');
    const id = Number(path.split('/')[2]);
    const byIdOrName = <T extends { id: number; name: string }>(items: T[], q: Record<string, string>): T[] =>
      q['name'] === undefined ? items : items.filter((i) => i.name === q['name']);
    const one = <T,>(kind: string, item: T | undefined): T => {
      if (item === undefined) throw new ApiError(404, 'not_found', `${kind} with ID '${id}' not found`);
      return item;
    };
    const routes: [string, string, RegExp, Handler][] = [
      ['GET', '/servers', /^\/servers$/, (p, q, _b, params) => this.listServers(p, q, params)],
      ['POST', '/servers', /^\/servers$/, (p, _q, b) => this.createServer(p, b as Record<string, unknown>)],
      ['GET', '/servers/{id}', /^\/servers\/\d+$/, (p) => [200, { server: this.serverJson(this.findServer(p, id)) }]],
      ['DELETE', '/servers/{id}', /^\/servers\/\d+$/, (p) => this.deleteServer(p, id)],
      ['GET', '/ssh_keys', /^\/ssh_keys$/, (p, q) => this.listSshKeys(p, q)],
      ['POST', '/ssh_keys', /^\/ssh_keys$/, (p, _q, b) => this.createSshKey(p, b as Record<string, unknown>)],
      ['GET', '/ssh_keys/{id}', /^\/ssh_keys\/\d+$/, (p) => [200, { ssh_key: one('SSH key', p.sshKeys.get(id)) }]],
      ['DELETE', '/ssh_keys/{id}', /^\/ssh_keys\/\d+$/, (p) => this.deleteSshKey(p, id)],
      ['GET', '/server_types', /^\/server_types$/, (_p, q) => this.page(q, 'server_types', byIdOrName(TYPES, q).map(serverTypeJson))],
      ['GET', '/server_types/{id}', /^\/server_types\/\d+$/, () => [200, { server_type: serverTypeJson(one('server type', TYPES.find((t) => t.id === id))) }]],
      ['GET', '/locations', /^\/locations$/, (_p, q) => this.page(q, 'locations', sorted(byIdOrName(LOCATIONS, q), q['sort']))],
      ['GET', '/locations/{id}', /^\/locations\/\d+$/, () => [200, { location: one('location', LOCATIONS.find((l) => l.id === id)) }]],
      ['GET', '/images', /^\/images$/, (_p, q, _b, params) => this.listImages(q, params)],
      ['GET', '/images/{id}', /^\/images\/\d+$/, () => [200, { image: imageJson(one('image', IMAGES.find((i) => i.id === id))) }]],
      ['GET', '/pricing', /^\/pricing$/, () => [200, { pricing: pricingJson() }]],
      ['GET', '/actions', /^\/actions$/, (_p, _q, _b, params) => this.listActions(params)],
      ['GET', '/actions/{id}', /^\/actions\/\d+$/, () => [200, { action: one('action', this.actions.get(id)) }]],
    ];
    const match = routes.find(([m, , re]) => re.test(path) && m === method);
    if (!match) {
      if (routes.some(([, , re]) => re.test(path))) throw new ApiError(405, 'method_not_allowed', `${method} is not allowed here`);
      throw new ApiError(404, 'not_found', `no route ${path}`);
    }
    return { template: match[1], run: match[3] };
  }

  private page(query: Record<string, string>, key: string, items: unknown[]): [number, unknown] {
    const page = query['page'] === undefined ? 1 : Number(query['page']);
    const perPage = query['per_page'] === undefined ? 25 : Number(query['per_page']);
    if (!Number.isInteger(page) || page < 1) throw new ApiError(422, 'invalid_input', `invalid input in field 'page'`, { fields: [{ name: 'page', messages: ['must be ≥ 1'] }] });
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 50) {
      throw new ApiError(422, 'invalid_input', `invalid input in field 'per_page': must be between 1 and 50`, { fields: [{ name: 'per_page', messages: ['must be between 1 and 50'] }] });
    }
    const lastPage = Math.max(1, Math.ceil(items.length / perPage));
    return [
      200,
      {
        [key]: items.slice((page - 1) * perPage, page * perPage),
        meta: {
          pagination: {
            page,
            per_page: perPage,
            previous_page: page > 1 ? page - 1 : null,
            next_page: page < lastPage ? page + 1 : null,
            last_page: lastPage,
            total_entries: items.length,
          },
        },
      },
    ];
  }

  private selector(query: Record<string, string>): (labels: Record<string, string>) => boolean {
    if (query['label_selector'] === undefined) return () => true;
    try {
      return parseLabelSelector(query['label_selector']);
    } catch (err) {
      if (err instanceof LabelSelectorError) throw new ApiError(422, 'invalid_input', `invalid input in field 'label_selector': ${err.message}`, { fields: [{ name: 'label_selector', messages: [err.message] }] });
      throw err;
    }
  }

  private listServers(p: StandinProject, query: Record<string, string>, params: URLSearchParams): [number, unknown] {
    const matches = this.selector(query);
    // `status` may be given several times: any of them.
    const statuses = params.getAll('status');
    const servers = [...p.servers.values()].filter(
      (s) => matches(s.labels) && (query['name'] === undefined || s.name === query['name']) && (statuses.length === 0 || statuses.includes(s.status)),
    );
    return this.page(query, 'servers', sorted(servers, query['sort']).map((s) => this.serverJson(s)));
  }

  private listImages(query: Record<string, string>, params: URLSearchParams): [number, unknown] {
    const types = params.getAll('type');
    const arch = params.getAll('architecture');
    const images = IMAGES.filter(
      (i) => (query['name'] === undefined || i.name === query['name']) && (types.length === 0 || types.includes('system')) && (arch.length === 0 || arch.includes(i.architecture)),
    );
    return this.page(query, 'images', sorted(images, query['sort']).map(imageJson));
  }

  private listActions(params: URLSearchParams): [number, unknown] {
    const ids = params.getAll('id').map(Number);
    if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 1)) {
      throw new ApiError(422, 'invalid_input', "invalid input in field 'id'", { fields: [{ name: 'id', messages: ['at least one action ID is required'] }] });
    }
    const actions = ids.map((id) => this.actions.get(id)).filter((a): a is StandinAction => a !== undefined);
    return [200, { actions, meta: { pagination: { page: 1, per_page: 25, previous_page: null, next_page: null, last_page: 1, total_entries: actions.length } } }];
  }

  private findServer(p: StandinProject, id: number): StandinServer {
    const server = p.servers.get(id);
    if (!server) throw new ApiError(404, 'not_found', `server with ID '${id}' not found`);
    return server;
  }

  /** What `POST /servers` resolves an ID-or-name field to: an integer is an ID, a string a name (a numeric string too). */
  private resolve<T extends { id: number; name: string }>(items: T[], ref: unknown, field: string): T {
    const found = typeof ref === 'number' ? items.find((i) => i.id === ref) : items.find((i) => i.name === ref);
    if (!found) throw invalid(field, `${field.replace(/_/g, ' ')} ${String(ref)} not found`);
    return found;
  }

  private createServer(p: StandinProject, body: Record<string, unknown>): [number, unknown] {
    const name = String(body['name']);
    const labels = (body['labels'] ?? {}) as Record<string, string>;
    const userData = String(body['user_data'] ?? '');
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/.test(name)) throw invalid('name', 'not a valid hostname');
    checkLabels(labels);
    if (Buffer.byteLength(userData) > 32 * 1024) throw invalid('user_data', 'user_data is limited to 32 KiB');
    const location = this.resolve(LOCATIONS, body['location'] ?? 'fsn1', 'location').name;
    const type = this.resolve(TYPES, body['server_type'], 'server_type');
    const imageRef = body['image'];
    const image =
      typeof imageRef === 'number'
        ? this.resolve(IMAGES, imageRef, 'image')
        : this.resolve(IMAGES.filter((i) => i.architecture === type.architecture), imageRef, 'image');
    if (image.architecture !== type.architecture) throw invalid('image', `image ${image.id} is for ${image.architecture}, server type ${type.name} is ${type.architecture}`);
    if (pastUnavailable(type)) throw invalid('server_type', `server type ${type.name} is deprecated and no longer available`);
    if (!type.available.includes(location)) throw new ApiError(412, 'resource_unavailable', `server type ${type.name} is not available in ${location}`);
    if ((this.opts.unavailableTypes ?? []).includes(type.name) || (this.opts.soldOut?.[location] ?? []).includes(type.name)) {
      throw new ApiError(412, 'resource_unavailable', `server type ${type.name} is unavailable in ${location}: no capacity`);
    }
    const keys = ((body['ssh_keys'] ?? []) as (number | string)[]).map((ref) => this.resolve([...p.sshKeys.values()], ref, 'ssh_keys').public_key);
    if ([...p.servers.values()].some((s) => s.name === name)) {
      throw new ApiError(409, 'uniqueness_error', 'server name is already used', { fields: [{ name: 'name' }] });
    }
    this.checkLimits(p.account, type);
    const server = this.newServer(p, { name, labels, serverType: type.name, location, image: image.name, userData });
    const fault = this.actionFaults.findIndex((f) => f.command === 'create_server');
    if (fault >= 0) {
      // A failed create leaves a server that exists (and bills) but never started: `off`.
      const message = this.actionFaults.splice(fault, 1)[0]!.message;
      const failed = async (): Promise<void> => {
        await sleep(this.opts.actionDelayMs ?? 150);
        server.status = 'off';
        throw new Error(message);
      };
      const action = this.startAction('create_server', server.id, failed);
      const start = this.startAction('start_server', server.id, async () => {
        await failed().catch(() => undefined);
        throw new Error('server was not created');
      });
      return [201, { server: this.serverJson(server), action, next_actions: [start], root_password: null }];
    }
    const boot = (async () => {
      // `initializing` until the create action has run, as the API answers right after a create.
      await sleep(this.opts.actionDelayMs ?? 150);
      if (this.opts.realHosts !== false && !(this.opts.unreachable ?? []).includes(name)) await this.startHost(server, keys);
      server.status = 'running';
    })();
    const action = this.startAction('create_server', server.id, () => boot);
    const start = this.startAction('start_server', server.id, () => boot);
    return [201, { server: this.serverJson(server), action, next_actions: [start], root_password: null }];
  }

  /** The account's limits, over all its projects: servers, cores and Primary IPs (an IPv4 and an IPv6 per server). */
  private checkLimits(account: StandinAccount, type: TypeSpec): void {
    const servers = account.projects.flatMap((p) => [...p.servers.values()]).filter((s) => s.status !== 'deleting');
    const limit = (name: string, message: string): ApiError => new ApiError(403, 'resource_limit_exceeded', message, { limits: [{ name }] });
    if (servers.length + 1 > account.serverLimit) throw limit('server_limit', 'server limit exceeded');
    const cores = servers.reduce((sum, s) => sum + TYPES.find((t) => t.name === s.serverType)!.cores, 0);
    if (cores + type.cores > account.coreLimit) throw limit('core_limit', 'core limit exceeded');
    if ((servers.length + 1) * 2 > account.primaryIpLimit) throw limit('primary_ip_limit', 'Primary IP limit exceeded');
  }

  private deleteServer(p: StandinProject, id: number): [number, unknown] {
    const server = this.findServer(p, id);
    server.status = 'deleting';
    const action = this.startAction('delete_server', id, async () => {
      // Listed as `deleting` until the action has run.
      await sleep(this.opts.actionDelayMs ?? 150);
      await server.host?.stop();
      server.host = null;
      p.servers.delete(id);
    });
    return [200, { action }];
  }

  private listSshKeys(p: StandinProject, query: Record<string, string>): [number, unknown] {
    const matches = this.selector(query);
    const keys = [...p.sshKeys.values()].filter(
      (k) => matches(k.labels) && (query['fingerprint'] === undefined || k.fingerprint === query['fingerprint']) && (query['name'] === undefined || k.name === query['name']),
    );
    return this.page(query, 'ssh_keys', keys);
  }

  private createSshKey(p: StandinProject, body: Record<string, unknown>): [number, unknown] {
    const name = String(body['name']);
    const publicKey = String(body['public_key']).trim();
    const labels = (body['labels'] ?? {}) as Record<string, string>;
    checkLabels(labels);
    const fingerprint = md5Fingerprint(publicKey);
    if (!fingerprint) throw new ApiError(422, 'invalid_input', "invalid input in field 'public_key': not an SSH public key", { fields: [{ name: 'public_key', messages: ['invalid'] }] });
    const keys = [...p.sshKeys.values()];
    if (keys.some((k) => k.fingerprint === fingerprint)) {
      throw new ApiError(409, 'uniqueness_error', 'SSH key with the same fingerprint already exists', { fields: [{ name: 'public_key' }] });
    }
    if (keys.some((k) => k.name === name)) throw new ApiError(409, 'uniqueness_error', 'SSH key with the same name already exists', { fields: [{ name: 'name' }] });
    const key: StandinSshKey = { id: this.nextId++, name, fingerprint, public_key: publicKey, labels, created: new Date().toISOString() };
    p.sshKeys.set(key.id, key);
    return [201, { ssh_key: key }];
  }

  private deleteSshKey(p: StandinProject, id: number): [number, unknown] {
    if (!p.sshKeys.delete(id)) throw new ApiError(404, 'not_found', `SSH key with ID '${id}' not found`);
    return [204, undefined];
  }
}
