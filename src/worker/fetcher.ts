import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import { HostLimiter } from './politeness.js';
import { refusalReason } from './ssrf.js';

export interface FetchOptions {
  maxInFlight: number;
  perHostConcurrency: number;
  perHostRps: number;
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  maxRedirects: number;
  maxBytes: number;
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
  allowLoopback: false,
  respectOptOut: true,
  userAgent: 'cah/0.1 (image-caption dataset crawler; respects X-Robots-Tag noai)',
};

export type FetchResult =
  | { ok: true; bytes: Buffer; contentType: string | null; ms: number; finalUrl: string }
  | { ok: false; error: string; ms: number };

const DNS_TTL_MS = 60_000;
const OPT_OUT = /\b(noai|noimageai)\b/i;

class RefusedError extends Error {}

/**
 * Downloads images: a DNS cache whose answers are checked against the SSRF rules before any
 * connection (so rebinding cannot slip through), redirects followed by hand with the same check
 * on every hop, a size cap enforced while streaming, a total timeout, per-host politeness.
 */
export class ImageFetcher {
  private readonly agent: Agent;
  private readonly limiter: HostLimiter;
  private readonly dnsCache = new Map<string, { at: number; addresses: LookupAddress[] }>();
  private active = 0;
  private bytes = 0;

  constructor(private readonly opts: FetchOptions) {
    this.limiter = new HostLimiter(opts.perHostConcurrency, opts.perHostRps);
    this.agent = new Agent({
      connections: Math.max(1, opts.perHostConcurrency),
      connectTimeout: opts.connectTimeoutMs,
      headersTimeout: opts.totalTimeoutMs,
      bodyTimeout: opts.totalTimeoutMs,
      connect: { lookup: this.lookup as unknown as import('node:net').LookupFunction },
    });
  }

  get inFlight(): number {
    return this.active;
  }

  stats(): { bytesIn: number; inFlight: number } {
    return { bytesIn: this.bytes, inFlight: this.active };
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
    try {
      let current = url;
      for (let hop = 0; ; hop++) {
        const target = new URL(current);
        if (target.protocol !== 'http:' && target.protocol !== 'https:') return this.fail(`refused: ${target.protocol} URL`, started);
        const literal = target.hostname.replace(/^\[|\]$/g, '');
        if (isIP(literal)) {
          const reason = refusalReason(literal, this.opts);
          if (reason) return this.fail(reason, started);
        }
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
          discard(res.body);
          return this.fail(`HTTP ${status}`, started);
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
          size += (chunk as Buffer).length;
          if (size > this.opts.maxBytes) {
            discard(res.body);
            return this.fail(`response too large: more than ${this.opts.maxBytes} bytes`, started);
          }
          chunks.push(chunk as Buffer);
        }
        this.bytes += size;
        const contentType = res.headers['content-type'];
        return {
          ok: true,
          bytes: Buffer.concat(chunks, size),
          contentType: typeof contentType === 'string' ? contentType : null,
          ms: Date.now() - started,
          finalUrl: target.href,
        };
      }
    } catch (err) {
      if (timedOut) return this.fail(`timeout after ${this.opts.totalTimeoutMs} ms`, started);
      return this.fail(describe(err), started);
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
      this.active--;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private fail(error: string, started: number): FetchResult {
    return { ok: false, error, ms: Date.now() - started };
  }

  /** dns.lookup with a TTL cache, refusing addresses the SSRF rules forbid. */
  private readonly lookup = (
    hostname: string,
    options: { all?: boolean },
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const finish = (addresses: LookupAddress[]): void => {
      const allowed = addresses.filter((a) => refusalReason(a.address, this.opts) === null);
      if (allowed.length === 0) {
        callback(new RefusedError(refusalReason(addresses[0]!.address, this.opts) ?? `refused: ${hostname}`), '', 0);
        return;
      }
      if (options.all) callback(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    };
    const cached = this.dnsCache.get(hostname);
    if (cached && Date.now() - cached.at < DNS_TTL_MS) {
      finish(cached.addresses);
      return;
    }
    dnsLookup(hostname, { all: true }, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      this.dnsCache.set(hostname, { at: Date.now(), addresses });
      finish(addresses);
    });
  };
}

/** Drops a response body we will not read; its abort error has nowhere useful to go. */
function discard(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => undefined);
  body.destroy();
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  const inner = e.cause ?? e;
  if (inner instanceof RefusedError || (inner.message ?? '').startsWith('refused:')) return inner.message!;
  if (inner.code === 'ENOTFOUND') return 'DNS: host not found';
  if (inner.code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout';
  if (inner.code === 'ECONNREFUSED') return 'connection refused';
  if (inner.code === 'ECONNRESET' || inner.code === 'UND_ERR_SOCKET') return 'connection reset';
  return inner.message ?? String(err);
}
