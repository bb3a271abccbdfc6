import { HetznerApiError } from './errors.js';

/** Backoff like hcloud-go: exponential from `baseDelayMs`, doubling up to `maxDelayMs`, with jitter. */
export interface RetryPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Attempts in all, the first one included. */
  maxTries: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseDelayMs: 1000, maxDelayMs: 60_000, maxTries: 5 };

/** Retries of the `attempt`-th failure (1-based): half the exponential delay fixed, half random. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * Whether a failed call may be sent again. `conflict` (the resource changed during the request),
 * `locked` (423: another action runs on the resource) and `rate_limit_exceeded` were refused before
 * anything happened, so any method retries them; gateway
 * errors and lost connections may have had effects, so only GET retries those.
 */
export function isRetryable(method: string, err: HetznerApiError): boolean {
  if (err.code === 'conflict' || err.code === 'locked' || err.status === 423 || err.status === 429) return true;
  if (method !== 'GET') return false;
  return err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504;
}

/** Milliseconds until the `RateLimit-Reset` UNIX timestamp (seconds), or null without the header. */
export function rateLimitWaitMs(resetHeader: string | undefined, now: number): number | null {
  if (!resetHeader) return null;
  const reset = Number(resetHeader);
  if (!Number.isFinite(reset)) return null;
  return Math.max(0, reset * 1000 - now);
}
