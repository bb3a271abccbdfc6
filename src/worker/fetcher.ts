import { lookup as dnsLookup } from 'node:dns';
import { Agent, request } from 'undici';
import { ByteBudget } from './byte-budget.js';
import { DnsCache } from './dns-cache.js';
import { HostLimiter } from './politeness.js';
import { guardedLookup, isRefusal, urlRefusal } from './ssrf.js';

export interface FetchOptions {
  maxInFlight: number;
  perHostConcurrency: number;
  perHostRps: number;
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  maxRedirects: number;
  maxBytes: number;
  /** Bytes of bodies held at once across all downloads (each download's bytes until its caller releases them). */
  maxBytesInFlight?: number;
  allowLoopback: boolean;
  respectOptOut: boolean;
  userAgent: string;
}

export const DEFAULT_FETCH_OPTIONS: FetchOptions = {
  maxInFlight: 256,
  perHostConcurrency: 4,
  perHostRps: 5,
  connectTimeoutMs: 10_000,
  totalTimeoutMs: 20_000,
  maxRedirects: 5,
  maxBytes: 10 * 1024 * 1024,
  maxBytesInFlight: 256 * 1024 * 1024,
  allowLoopback: false,
  respectOptOut: true,
  userAgent: 'cah/0.1 (image-caption dataset crawler; respects X-Robots-Tag noai)',
};

export type FetchResult =
  | { ok: true; bytes: Buffer; contentType: string | null; ms: number; finalUrl: string; release: () => void }
  | {
      ok: false;
      error: string;
      ms: number;
      /** Worth trying again later: a timeout, a reset connection, HTTP 429 or 5xx. */
      transient?: boolean;
      /** What the server's Retry-After asked for, in milliseconds. */
      retryAfterMs?: number;
    };

const DNS_TTL_MS = 60_000;
const DNS_MAX_ENTRIES = 10_000;
const OPT_OUT = /\b(noai|noimageai)\b/i;

/**
 * Downloads images: a bounded DNS cache whose answers are checked against the SSRF rules before any
 * connection (so rebinding cannot slip through), redirects followed by hand with the same check
 * on every hop, a size cap enforced while streaming, a byte budget across all downloads, a total
 * timeout, per-host politeness.
 */
export class ImageFetcher {
  private readonly agent: Agent;
  private readonly limiter: HostLimiter;
  private readonly dnsCache = new DnsCache((hostname, callback) => dnsLookup(hostname, { all: true }, callback), DNS_TTL_MS, DNS_MAX_ENTRIES);
  readonly budget: ByteBudget;
  private active = 0;
  private bytes = 0;

  constructor(private readonly opts: FetchOptions) {
    this.limiter = new HostLimiter(opts.perHostConcurrency, opts.perHostRps);
    this.budget = new ByteBudget(opts.maxBytesInFlight ?? DEFAULT_FETCH_OPTIONS.maxBytesInFlight!);
    this.agent = new Agent({
      connections: Math.max(1, opts.perHostConcurrency),
      connectTimeout: opts.connectTimeoutMs,
      // A backstop only: the download's own timer (the same limit, started earlier) ends it first.
      headersTimeout: opts.totalTimeoutMs + 1000,
      bodyTimeout: opts.totalTimeoutMs + 1000,
      connect: { lookup: guardedLookup(opts, this.dnsCache.resolve) },
    });
  }

  stats(): { bytesIn: number; inFlight: number; dnsEntries: number; hosts: number } {
    return { bytesIn: this.bytes, inFlight: this.active, dnsEntries: this.dnsCache.size, hosts: this.limiter.size };
  }

  async fetch(url: string, signal?: AbortSignal): Promise<FetchResult> {
    const started = Date.now();
    // The total timeout starts with the first request, not while politeness holds us back. One
    // controller and one timer per image: AbortSignal.any/timeout cost more than the request itself.
    const controller = new AbortController();
    let timer: NodeJS.Timeout | null = null;
    let timedOut = false;
    const onCallerAbort = (): void => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    else signal?.addEventListener('abort', onCallerAbort, { once: true });
    this.active++;
    const holder = {};
    let handedOver = false;
    try {
      let current = url;
      for (let hop = 0; ; hop++) {
        const target = new URL(current);
        const refused = urlRefusal(target, this.opts);
        if (refused) return this.fail(refused, started);
        const release = await this.limiter.acquire(target.hostname, signal);
        timer ??= setTimeout(() => {
          timedOut = true;
          controller.abort(new Error(`timeout after ${this.opts.totalTimeoutMs} ms`));
        }, this.opts.totalTimeoutMs);
        let res;
        try {
          res = await request(target, {
            method: 'GET',
            dispatcher: this.agent,
            signal: controller.signal,
            headers: { 'user-agent': this.opts.userAgent, accept: 'image/*,*/*;q=0.5' },
          });
        } finally {
          release();
        }
        const status = res.statusCode;
        if (status >= 300 && status < 400 && res.headers['location']) {
          discard(res.body);
          if (hop >= this.opts.maxRedirects) return this.fail(`too many redirects (more than ${this.opts.maxRedirects})`, started);
          current = new URL(String(res.headers['location']), target).href;
          continue;
        }
        if (status < 200 || status >= 300) {
          const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
          discard(res.body);
          const transient = status === 429 || (status >= 500 && status <= 599);
          return { ...this.fail(`HTTP ${status}`, started), ...(transient ? { transient } : {}), ...(retryAfterMs !== null ? { retryAfterMs } : {}) };
        }
        const robots = res.headers['x-robots-tag'];
        const robotsText = Array.isArray(robots) ? robots.join(',') : (robots ?? '');
        if (this.opts.respectOptOut && OPT_OUT.test(robotsText)) {
          discard(res.body);
          return this.fail(`opted out: X-Robots-Tag ${robotsText}`, started);
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > this.opts.maxBytes) {
          discard(res.body);
          return this.fail(`response too large: ${declared} bytes > ${this.opts.maxBytes}`, started);
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          await this.budget.take(holder, (chunk as Buffer).length, controller.signal);
          size += (chunk as Buffer).length;
          if (size > this.opts.maxBytes) {
            discard(res.body);
            return this.fail(`response too large: more than ${this.opts.maxBytes} bytes`, started);
          }
          chunks.push(chunk as Buffer);
        }
        this.bytes += size;
        const contentType = res.headers['content-type'];
        handedOver = true;
        return {
          ok: true,
          bytes: Buffer.concat(chunks, size),
          contentType: typeof contentType === 'string' ? contentType : null,
          ms: Date.now() - started,
          finalUrl: target.href,
          release: () => this.budget.release(holder),
        };
      }
    } catch (err) {
      // undici's own header/body timers carry the same limit and can fire first on a busy loop.
      if (timedOut || isUndiciTimeout(err)) return { ...this.fail(`timeout after ${this.opts.totalTimeoutMs} ms`, started), transient: true };
      const error = describe(err);
      return TRANSIENT_ERRORS.has(error) ? { ...this.fail(error, started), transient: true } : this.fail(error, started);
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
      if (!handedOver) this.budget.release(holder);
      this.active--;
    }
  }

  /** Holds requests to `host` back for `ms` (per-host backoff after a transient failure). */
  backoff(host: string, ms: number): void {
    this.limiter.backoff(host, ms);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private fail(error: string, started: number): Extract<FetchResult, { ok: false }> {
    return { ok: false, error, ms: Date.now() - started };
  }
}

const TRANSIENT_ERRORS: ReadonlySet<string> = new Set(['connect timeout', 'connection reset']);

/** Retry-After as seconds or an HTTP date, in milliseconds from now (null when absent or unreadable). */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return null;
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Drops a response body we will not read; its abort error has nowhere useful to go. */
function discard(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function isUndiciTimeout(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e.cause?.code ?? e.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  const inner = e.cause ?? e;
  if (isRefusal(inner) || (inner.message ?? '').startsWith('refused:')) return inner.message!;
  if (inner.code === 'ENOTFOUND') return 'DNS: host not found';
  if (inner.code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout';
  if (inner.code === 'ECONNREFUSED') return 'connection refused';
  if (inner.code === 'ECONNRESET' || inner.code === 'UND_ERR_SOCKET') return 'connection reset';
  return inner.message ?? String(err);
}
