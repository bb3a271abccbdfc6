import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { HetznerApiError } from './errors.js';
import { DEFAULT_RETRY, backoffDelay, isRetryable, rateLimitWaitMs, type RetryPolicy } from './retry.js';
import type {
  Action,
  CreateServerRequest,
  CreateServerResponse,
  Location,
  Pagination,
  Server,
  ServerType,
  SshKey,
} from './types.js';

export const DEFAULT_ENDPOINT = 'https://api.hetzner.cloud/v1';
/** The API's maximum page size. */
export const MAX_PER_PAGE = 50;

export interface HetznerClientOptions {
  token: string;
  /** API base URL; `HCLOUD_ENDPOINT` sets it from the environment, as for the hcloud CLI. */
  endpoint?: string;
  retry?: Partial<RetryPolicy>;
  /** How often `waitForAction` polls. */
  pollIntervalMs?: number;
  /** Called before each retry (for logs). */
  onRetry?: (info: { method: string; path: string; code: string; status: number; delayMs: number; attempt: number }) => void;
}

type Query = Record<string, string | number | undefined>;

/**
 * A small typed client of the Hetzner Cloud API over undici: the endpoints the swarm needs, typed API
 * errors, hcloud-go's retries (exponential backoff with jitter; `RateLimit-Reset` honoured on 429) and
 * pagination. It tolerates fields it does not know and needs none that Hetzner has removed.
 */
export class HetznerClient {
  private readonly endpoint: string;
  private readonly retry: RetryPolicy;
  /** How often `waitForAction` (and callers waiting on a resource) poll. */
  readonly pollIntervalMs: number;

  constructor(private readonly opts: HetznerClientOptions) {
    this.endpoint = (opts.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
  }

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once<T>(method, path, opts);
      } catch (err) {
        if (!(err instanceof HetznerApiError) || !isRetryable(method, err) || attempt >= this.retry.maxTries) throw err;
        const backoff = backoffDelay(this.retry, attempt);
        const reset = err.status === 429 ? rateLimitWaitMs(err.rateLimitReset, Date.now()) : null;
        const delayMs = reset === null ? backoff : Math.min(Math.max(reset, backoff), this.retry.maxDelayMs);
        this.opts.onRetry?.({ method, path, code: err.code, status: err.status, delayMs, attempt });
        await sleep(delayMs);
      }
    }
  }

  private async once<T>(method: string, path: string, opts: { query?: Query; body?: unknown }): Promise<T> {
    const url = new URL(this.endpoint + path);
    for (const [key, value] of Object.entries(opts.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    let res;
    try {
      res = await request(url, {
        method: method as 'GET',
        headers: {
          authorization: `Bearer ${this.opts.token}`,
          accept: 'application/json',
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
    } catch (err) {
      throw new HetznerApiError('network_error', `${method} ${url.host}${url.pathname}: ${(err as Error).message}`, 0);
    }
    const text = await res.body.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        if (res.statusCode < 400) throw new HetznerApiError('invalid_response', `${method} ${url.pathname}: response is not JSON`, res.statusCode);
      }
    }
    if (res.statusCode >= 400) throw toApiError(method, url.pathname, res.statusCode, json, res.headers['ratelimit-reset']);
    return json as T;
  }

  /** Every item of a paginated list, `per_page` 50, following `meta.pagination.next_page`. */
  async listAll<T>(path: string, key: string, query: Query = {}): Promise<T[]> {
    const items: T[] = [];
    let page: number | null = 1;
    for (let pages = 0; page !== null; pages++) {
      if (pages >= 10_000) throw new HetznerApiError('invalid_response', `${path}: pagination does not end`, 200);
      const res: Record<string, unknown> & { meta?: { pagination?: Pagination } } = await this.call('GET', path, {
        query: { ...query, page, per_page: MAX_PER_PAGE },
      });
      const batch = res[key];
      if (!Array.isArray(batch)) throw new HetznerApiError('invalid_response', `${path}: no "${key}" array in the response`, 200);
      items.push(...(batch as T[]));
      const next: number | null | undefined = res.meta?.pagination?.next_page;
      page = typeof next === 'number' && next > page ? next : null;
    }
    return items;
  }

  listServers(labelSelector?: string): Promise<Server[]> {
    return this.listAll<Server>('/servers', 'servers', { label_selector: labelSelector });
  }

  async getServer(id: number): Promise<Server> {
    return (await this.call<{ server: Server }>('GET', `/servers/${id}`)).server;
  }

  createServer(req: CreateServerRequest): Promise<CreateServerResponse> {
    return this.call<CreateServerResponse>('POST', '/servers', { body: req });
  }

  async deleteServer(id: number): Promise<Action> {
    return (await this.call<{ action: Action }>('DELETE', `/servers/${id}`)).action;
  }

  listSshKeys(query: { fingerprint?: string; label_selector?: string } = {}): Promise<SshKey[]> {
    return this.listAll<SshKey>('/ssh_keys', 'ssh_keys', query);
  }

  async createSshKey(req: { name: string; public_key: string; labels: Record<string, string> }): Promise<SshKey> {
    return (await this.call<{ ssh_key: SshKey }>('POST', '/ssh_keys', { body: req })).ssh_key;
  }

  async deleteSshKey(id: number): Promise<void> {
    await this.call<unknown>('DELETE', `/ssh_keys/${id}`);
  }

  listServerTypes(): Promise<ServerType[]> {
    return this.listAll<ServerType>('/server_types', 'server_types');
  }

  listLocations(): Promise<Location[]> {
    return this.listAll<Location>('/locations', 'locations');
  }

  async getAction(id: number): Promise<Action> {
    return (await this.call<{ action: Action }>('GET', `/actions/${id}`)).action;
  }

  /** Polls an action until `success`; its `error` becomes a HetznerApiError. */
  async waitForAction(action: Action, timeoutMs = 15 * 60_000): Promise<Action> {
    const deadline = Date.now() + timeoutMs;
    let current = action;
    while (current.status === 'running') {
      if (Date.now() > deadline) throw new HetznerApiError('timeout', `action ${current.id} (${current.command}) still running after ${Math.round(timeoutMs / 1000)} s`, 0);
      await sleep(this.pollIntervalMs);
      current = await this.getAction(current.id);
    }
    if (current.status === 'error') {
      throw new HetznerApiError(current.error?.code ?? 'action_failed', `action ${current.command} failed: ${current.error?.message ?? 'unknown error'}`, 0);
    }
    return current;
  }
}

/** The API's error body (`{ error: { code, message, details } }`) as a typed error. */
function toApiError(method: string, path: string, status: number, body: unknown, reset: string | string[] | undefined): HetznerApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
  const message = typeof error?.message === 'string' ? error.message : `${method} ${path} answered HTTP ${status}`;
  return new HetznerApiError(code, message, status, error?.details, Array.isArray(reset) ? reset[0] : reset);
}
