import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { destination as pinoDestination, pino, type Logger } from 'pino';

/** `--state DIR`, else $CAH_STATE, else ~/.local/share/cah: the SQLite file, the worker token and keys. */
export function resolveStateDir(flag: string | undefined): string {
  if (flag) return resolve(flag);
  if (process.env['CAH_STATE']) return resolve(process.env['CAH_STATE']);
  const dataHome = process.env['XDG_DATA_HOME'] || join(homedir(), '.local', 'share');
  return join(dataHome, 'cah');
}

/** Structured JSON logs (pino) on stderr, or into a file while the dashboard owns the terminal. */
export function createLogger(opts: { name: string; level?: string; file?: string }): Logger {
  const level = opts.level ?? process.env['CAH_LOG_LEVEL'] ?? 'info';
  // Logs name hosts, shards and errors: private to the user, like the rest of the state directory.
  if (opts.file) mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
  const destination = opts.file ? pinoDestination({ dest: opts.file, mode: 0o600, sync: false }) : pinoDestination(2);
  return pino({ name: opts.name, level, base: { pid: process.pid } }, destination);
}

/** Parses an integer flag, with a one-line error naming the expectation. */
export function intFlag(min = 0, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    if (n > max) throw new InvalidArgumentError(`expected an integer ≤ ${max}, got "${value}"`);
    return n;
  };
}

/** Parses a number flag within [min, max]. */
export function numberFlag(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number between ${min} and ${max}, got "${value}"`);
    }
    return n;
  };
}

/**
 * A warning when plain-text gRPC would listen beyond this machine: the worker token and every
 * sample then cross the network unencrypted (workers should come through SSH tunnels or TLS).
 */
export function exposedListenWarning(address: string): string | null {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1' || /^127\./.test(host)) return null;
  return `--listen ${address} serves plain-text gRPC beyond this machine: the worker token and samples travel unencrypted (prefer 127.0.0.1 with SSH tunnels, or --tls-listen)`;
}
