import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { ActionPoller } from './action-poller.js';
import { HetznerApiError } from './errors.js';
import { DEFAULT_RETRY, backoffDelay, isRetryable, rateLimitWaitMs, type RetryPolicy } from './retry.js';
import type {
  Action,
  CreateServerRequest,
  CreateServerResponse,
  Location,
  Pagination,
  Pricing,
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
  /** How often `waitForAction` polls at first; the interval rises to 10× this (hcloud-go: 1 s to 10 s). */
  pollIntervalMs?: number;
  /**
   * Requests kept in reserve: once `RateLimit-Remaining` falls to this, requests are spaced at the
   * rate the budget refills (from `RateLimit-Reset`), so a long run never meets a 429. Default 20;
   * negative: never paced.
   */
  rateLimitReserve?: number;
  /** Called before each retry (for logs). */
  onRetry?: (info: { method: string; path: string; code: string; status: number; delayMs: number; attempt: number }) => void;
}

type Query = Record<string, string | number | number[] | undefined>;

/** What the last response said about the request budget. */
interface Budget {
  limit: number;
  remaining: number;
  /** UNIX ms when the budget is full again. */
  resetMs: number;
}

/**
 * A small typed client of the Hetzner Cloud API over undici: the endpoints the swarm needs, typed API
 * errors, hcloud-go's retries (exponential backoff with jitter; `RateLimit-Reset` honoured on 429) and
 * pagination. It tolerates fields it does not know and needs none that Hetzner has removed.
 */
export class HetznerClient {
  private readonly endpoint: string;
  private readonly retry: RetryPolicy;
  /** How often `waitForAction` (and callers waiting on a resource) poll at first. */
  readonly pollIntervalMs: number;
  /** The longest poll interval (10× the first). */
  readonly maxPollIntervalMs: number;
  private readonly actions: ActionPoller;
  private budget: Budget | null = null;
  /** When the next paced request may go (pacing only once the reserve is reached). */
  private nextSlotMs = 0;

  constructor(private readonly opts: HetznerClientOptions) {
    this.endpoint = (opts.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.maxPollIntervalMs = this.pollIntervalMs * 10;
    this.actions = new ActionPoller((ids) => this.listActions(ids), this.pollIntervalMs, this.maxPollIntervalMs);
  }

  /** Waits while the budget is at its reserve: one request per refill interval. */
  private async pace(): Promise<void> {
    const budget = this.budget;
    const reserve = this.opts.rateLimitReserve ?? 20;
    if (!budget || budget.remaining > reserve) return;
    const missing = Math.max(1, budget.limit - budget.remaining);
    const perRequestMs = Math.max(0, budget.resetMs - Date.now()) / missing;
    const now = Date.now();
    const slot = Math.max(now, this.nextSlotMs);
    this.nextSlotMs = slot + perRequestMs;
    if (slot > now) await sleep(Math.min(slot - now, this.retry.maxDelayMs));
  }

  private noteBudget(headers: Record<string, string | string[] | undefined>): void {
    const num = (name: string): number => Number(Array.isArray(headers[name]) ? headers[name]![0] : headers[name]);
    const limit = num('ratelimit-limit');
    const remaining = num('ratelimit-remaining');
    const reset = num('ratelimit-reset');
    if (Number.isFinite(limit) && Number.isFinite(remaining) && Number.isFinite(reset)) this.budget = { limit, remaining, resetMs: reset * 1000 };
  }

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.pace();
        if (this.budget) this.budget.remaining--;
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
    for (const [key, value] of Object.entries(opts.query ?? {})) {
      // Repeated parameters (`id=1&id=2`) for lists, as the API takes them.
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, String(item));
      else if (value !== undefined) url.searchParams.set(key, String(value));
    }
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
    this.noteBudget(res.headers);
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

  async getPricing(): Promise<Pricing> {
    return (await this.call<{ pricing: Pricing }>('GET', '/pricing')).pricing;
  }

  /** Up to 25 actions by ID in one request (`GET /actions?id=…&id=…`). */
  async listActions(ids: number[]): Promise<Action[]> {
    return (await this.call<{ actions: Action[] }>('GET', '/actions', { query: { id: ids } })).actions;
  }

  /** Waits until an action finishes (polled together with this client's other running actions); its `error` becomes a HetznerApiError. */
  waitForAction(action: Action, timeoutMs = 15 * 60_000): Promise<Action> {
    return this.actions.wait(action, timeoutMs);
  }

  /** Waits for several actions (a create and its `next_actions`); the first failure rejects. */
  async waitForActions(actions: Action[], timeoutMs = 15 * 60_000): Promise<Action[]> {
    return Promise.all(actions.map((a) => this.waitForAction(a, timeoutMs)));
  }
}

/** The API's error body (`{ error: { code, message, details } }`) as a typed error. */
function toApiError(method: string, path: string, status: number, body: unknown, reset: string | string[] | undefined): HetznerApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
  const message = typeof error?.message === 'string' ? error.message : `${method} ${path} answered HTTP ${status}`;
  return new HetznerApiError(code, message, status, error?.details, Array.isArray(reset) ? reset[0] : reset);
}
