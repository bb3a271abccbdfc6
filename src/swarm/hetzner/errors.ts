import { CahError } from '../../errors.js';

/**
 * A failed Hetzner Cloud API call: the API's error `code` and `message`, and the HTTP status (0: no
 * response). Its code is Hetzner's own (`unauthorized`, `not_found`, …): retries branch on it.
 */
export class HetznerApiError extends CahError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    readonly details?: unknown,
    /** On 429: the `RateLimit-Reset` header (UNIX seconds), when the limit has fully recovered. */
    readonly rateLimitReset?: string,
  ) {
    super(code, message);
  }
}

export function isApiError(err: unknown, ...codes: string[]): err is HetznerApiError {
  return err instanceof HetznerApiError && (codes.length === 0 || codes.includes(err.code));
}

/** One line for humans: `resource_limit_exceeded (403): project limit exceeded`. */
export function describeApiError(err: unknown): string {
  if (err instanceof HetznerApiError) return `${err.code}${err.status ? ` (${err.status})` : ''}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** Where Hetzner's account limits (servers, cores, Primary IPs) are raised. */
export const RAISE_LIMITS_HINT = 'limits are per account, so another project\'s token adds nothing: raise them in the Hetzner Console → your project → Limits (a request, usually answered within a day)';

/** Hetzner's own message, and for a limit the way to raise it. */
export function explainApiError(err: unknown): string {
  const line = describeApiError(err);
  return isApiError(err, 'resource_limit_exceeded') ? `${line}; ${RAISE_LIMITS_HINT}` : line;
}
