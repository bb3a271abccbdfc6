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
  /** Default server limit of a project. */
  serverLimit?: number;
  /** Server types out of capacity: creating one answers 412 resource_unavailable. */
  unavailableTypes?: string[];
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

export interface StandinProject {
  token: string;
  servers: Map<number, StandinServer>;
  sshKeys: Map<number, StandinSshKey>;
  serverLimit: number;
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
  deprecated: boolean;
  /** Locations where it can be ordered (others list it as unavailable). */
  available: string[];
}

/** The catalogue: the old cx22/cpx11 generation deprecated (and cheapest, so a naive pick would take it). */
const TYPES: TypeSpec[] = [
  { id: 22, name: 'cx22', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', architecture: 'x86', hourly: 0.006, deprecated: true, available: ['fsn1', 'nbg1', 'hel1'] },
  { id: 11, name: 'cpx11', cores: 2, memory: 2, disk: 40, cpu_type: 'shared', architecture: 'x86', hourly: 0.0063, deprecated: true, available: ['fsn1', 'nbg1', 'hel1', 'ash'] },
  { id: 101, name: 'cax11', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', architecture: 'arm', hourly: 0.0062, deprecated: false, available: ['fsn1', 'nbg1', 'hel1'] },
  { id: 103, name: 'cx23', cores: 2, memory: 4, disk: 40, cpu_type: 'shared', architecture: 'x86', hourly: 0.0066, deprecated: false, available: ['fsn1', 'nbg1', 'hel1'] },
  { id: 104, name: 'cpx22', cores: 2, memory: 4, disk: 80, cpu_type: 'shared', architecture: 'x86', hourly: 0.0104, deprecated: false, available: ['fsn1', 'nbg1', 'hel1', 'ash'] },
  { id: 105, name: 'cpx32', cores: 4, memory: 8, disk: 160, cpu_type: 'shared', architecture: 'x86', hourly: 0.0192, deprecated: false, available: ['nbg1', 'ash'] },
  { id: 96, name: 'ccx13', cores: 2, memory: 8, disk: 80, cpu_type: 'dedicated', architecture: 'x86', hourly: 0.0232, deprecated: false, available: ['fsn1', 'nbg1', 'hel1', 'ash'] },
];

const IMAGES: Record<string, { id: number; os_flavor: string; os_version: string; description: string }> = {
  'ubuntu-24.04': { id: 161547269, os_flavor: 'ubuntu', os_version: '24.04', description: 'Ubuntu 24.04' },
  'ubuntu-22.04': { id: 67794396, os_flavor: 'ubuntu', os_version: '22.04', description: 'Ubuntu 22.04' },
  'debian-12': { id: 114690387, os_flavor: 'debian', os_version: '12', description: 'Debian 12' },
};

const DEPRECATION = { announced: '2025-10-16T06:00:00+00:00', unavailable_after: '2026-01-15T06:00:00+00:00' };
const EPOCH = '2016-01-30T23:50:00+00:00';

function money(n: number): { net: string; gross: string } {
  return { net: n.toFixed(10), gross: (n * 1.19).toFixed(10) };
}

function serverTypeJson(t: TypeSpec): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    description: t.name.toUpperCase(),
    category: t.cpu_type === 'dedicated' ? 'dedicated' : 'shared',
    cores: t.cores,
    memory: t.memory,
    disk: t.disk,
    deprecated: t.deprecated,
    deprecation: t.deprecated ? DEPRECATION : null,
    prices: LOCATIONS.filter((l) => t.available.includes(l.name)).map((l) => ({
      location: l.name,
      price_hourly: money(t.hourly),
      price_monthly: money(t.hourly * 730),
      included_traffic: 21990232555520,
      price_per_tb_traffic: money(1),
    })),
    storage_type: 'local',
    cpu_type: t.cpu_type,
    architecture: t.architecture,
    locations: LOCATIONS.map((l) => ({
      id: l.id,
      name: l.name,
      deprecation: t.deprecated ? DEPRECATION : null,
      recommended: t.available.includes(l.name) && !t.deprecated,
      available: t.available.includes(l.name),
    })),
  };
}

type Handler = (project: StandinProject, query: Record<string, string>, body: unknown) => [number, unknown];

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> | null = null) {
    super(message);
  }
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

  addProject(token: string, opts: { serverLimit?: number; rateLimit?: RateLimit } = {}): StandinProject {
    const rateLimit = opts.rateLimit ?? { limit: 3600, refillPerSecond: 1 };
    const project: StandinProject = {
      token,
      servers: new Map(),
      sshKeys: new Map(),
      serverLimit: opts.serverLimit ?? this.opts.serverLimit ?? 25,
      rateLimit,
      remaining: rateLimit.limit,
      refilledAt: Date.now(),
    };
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
    const image = IMAGES[s.image]!;
    return {
      id: s.id,
      name: s.name,
      status: s.status,
      created: s.created,
      public_net: {
        ipv4: { id: s.id + 1, ip: s.ip, blocked: false, dns_ptr: `static.${s.ip}.clients.your-server.de` },
        ipv6: null,
        floating_ips: [],
        firewalls: [],
      },
      private_net: [],
      server_type: serverTypeJson(type),
      location,
      image: {
        id: image.id,
        type: 'system',
        status: 'available',
        name: s.image,
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
        architecture: type.architecture,
      },
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
      [status, body] = await route.run(project, query, json);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'server_error', (err as Error).message);
      status = e.status;
      body = { error: { code: e.code, message: e.message, details: e.details } };
    }
    if (template) {
      const problems = this.spec.response(method, template, status, body);
      if (problems.length) this.violations.push(`response ${status} ${method} ${template}: ${problems.join('; ')}`);
    }
    this.requests.push({ token, method, path: url.pathname, query, status, at: Date.now() });
    res.writeHead(status, { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }

  private route(method: string, pathname: string): { template: string; run: Handler } {
    const path = pathname.replace(/^\/v1/, '');
    const id = Number(path.split('/')[2]);
    const routes: [string, string, RegExp, Handler][] = [
      ['GET', '/servers', /^\/servers$/, (p, q) => this.listServers(p, q)],
      ['POST', '/servers', /^\/servers$/, (p, _q, b) => this.createServer(p, b as Record<string, unknown>)],
      ['GET', '/servers/{id}', /^\/servers\/\d+$/, (p) => [200, { server: this.serverJson(this.findServer(p, id)) }]],
      ['DELETE', '/servers/{id}', /^\/servers\/\d+$/, (p) => this.deleteServer(p, id)],
      ['GET', '/ssh_keys', /^\/ssh_keys$/, (p, q) => this.listSshKeys(p, q)],
      ['POST', '/ssh_keys', /^\/ssh_keys$/, (p, _q, b) => this.createSshKey(p, b as Record<string, unknown>)],
      ['DELETE', '/ssh_keys/{id}', /^\/ssh_keys\/\d+$/, (p) => this.deleteSshKey(p, id)],
      ['GET', '/server_types', /^\/server_types$/, (_p, q) => this.page(q, 'server_types', TYPES.map(serverTypeJson))],
      ['GET', '/locations', /^\/locations$/, (_p, q) => this.page(q, 'locations', LOCATIONS)],
      ['GET', '/actions/{id}', /^\/actions\/\d+$/, () => {
        const action = this.actions.get(id);
        if (!action) throw new ApiError(404, 'not_found', `action with ID '${id}' not found`);
        return [200, { action }];
      }],
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

  private listServers(p: StandinProject, query: Record<string, string>): [number, unknown] {
    const matches = this.selector(query);
    const servers = [...p.servers.values()]
      .filter((s) => matches(s.labels) && (query['name'] === undefined || s.name === query['name']) && (query['status'] === undefined || s.status === query['status']))
      .sort((a, b) => a.id - b.id)
      .map((s) => this.serverJson(s));
    return this.page(query, 'servers', servers);
  }

  private findServer(p: StandinProject, id: number): StandinServer {
    const server = p.servers.get(id);
    if (!server) throw new ApiError(404, 'not_found', `server with ID '${id}' not found`);
    return server;
  }

  private createServer(p: StandinProject, body: Record<string, unknown>): [number, unknown] {
    const name = String(body['name']);
    const typeName = String(body['server_type']);
    const location = String(body['location'] ?? 'fsn1');
    const image = String(body['image']);
    const labels = (body['labels'] ?? {}) as Record<string, string>;
    const invalid = (field: string, message: string): ApiError =>
      new ApiError(422, 'invalid_input', `invalid input in field '${field}': ${message}`, { fields: [{ name: field, messages: [message] }] });
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/.test(name)) throw invalid('name', 'not a valid hostname');
    checkLabels(labels);
    if (!LOCATIONS.some((l) => l.name === location)) throw invalid('location', `location ${location} not found`);
    if (!IMAGES[image]) throw invalid('image', `image ${image} not found`);
    const type = TYPES.find((t) => t.name === typeName);
    if (!type) throw invalid('server_type', `server type ${typeName} not found`);
    if (type.deprecated) throw invalid('server_type', `server type ${typeName} is deprecated`);
    if (!type.available.includes(location) || (this.opts.unavailableTypes ?? []).includes(typeName)) {
      throw new ApiError(412, 'resource_unavailable', `server type ${typeName} is unavailable in ${location}`);
    }
    const keys = ((body['ssh_keys'] ?? []) as string[]).map((ref) => {
      const key = [...p.sshKeys.values()].find((k) => String(k.id) === ref || k.name === ref);
      if (!key) throw invalid('ssh_keys', `SSH key ${ref} not found`);
      return key.public_key;
    });
    if ([...p.servers.values()].some((s) => s.name === name)) {
      throw new ApiError(409, 'uniqueness_error', 'server name is already used', { fields: [{ name: 'name' }] });
    }
    if ([...p.servers.values()].filter((s) => s.status !== 'deleting').length >= p.serverLimit) {
      throw new ApiError(403, 'resource_limit_exceeded', 'server limit exceeded', { limits: [{ name: 'server_limit' }] });
    }
    const server = this.newServer(p, { name, labels, serverType: typeName, location, image, userData: String(body['user_data'] ?? '') });
    const boot = (async () => {
      if (this.opts.realHosts !== false && !(this.opts.unreachable ?? []).includes(name)) await this.startHost(server, keys);
      server.status = 'running';
    })();
    const action = this.startAction('create_server', server.id, () => boot);
    const start = this.startAction('start_server', server.id, () => boot);
    return [201, { server: this.serverJson(server), action, next_actions: [start], root_password: null }];
  }

  private deleteServer(p: StandinProject, id: number): [number, unknown] {
    const server = this.findServer(p, id);
    server.status = 'deleting';
    const action = this.startAction('delete_server', id, async () => {
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
