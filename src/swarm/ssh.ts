import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientChannel } from 'ssh2';
import { CahError } from '../errors.js';
import { writePrivateFile } from './state.js';

/** The host presented another key than the one pinned on first contact: refused, never overwritten. */
export class HostKeyChangedError extends CahError {
  constructor(readonly host: string, pinned: string, presented: string) {
    super('CAH_HOST_KEY_CHANGED', `host key of ${host} changed (pinned ${pinned}, presented ${presented}): refusing to connect; if the server was rebuilt, remove its line from the swarm known_hosts file`);
  }
}

export interface SshTarget {
  /** For messages: the server name. */
  name: string;
  host: string;
  port: number;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** OpenSSH's known_hosts host field: `ip`, or `[ip]:port` off port 22. */
function hostField(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's fingerprint of a `type base64` key: `SHA256:…`. */
function fingerprint(key: string): string {
  const blob = Buffer.from(key.split(' ')[1] ?? '', 'base64');
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The key type inside an SSH public key blob (its first length-prefixed string). */
function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('ascii');
}

/**
 * Host keys pinned on first contact, in OpenSSH known_hosts format (so `ssh -o UserKnownHostsFile=`
 * can use it too). A server cah deletes is forgotten, since Hetzner reuses IP addresses.
 */
export class KnownHosts {
  constructor(readonly path: string) {}

  private lines(): string[] {
    return existsSync(this.path) ? readFileSync(this.path, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')) : [];
  }

  pinned(host: string, port: number): string | null {
    const field = hostField(host, port);
    const line = this.lines().find((l) => l.split(/\s+/)[0] === field);
    return line ? line.split(/\s+/).slice(1, 3).join(' ') : null;
  }

  /** Accepts a pinned key, pins an unknown host's key, throws on a changed one. */
  verify(target: SshTarget, blob: Buffer): void {
    const presented = `${keyType(blob)} ${blob.toString('base64')}`;
    const pinned = this.pinned(target.host, target.port);
    if (pinned === presented) return;
    if (pinned !== null) throw new HostKeyChangedError(`${target.name} (${target.host}:${target.port})`, fingerprint(pinned), fingerprint(presented));
    appendFileSync(this.path, `${hostField(target.host, target.port)} ${presented}\n`, { mode: 0o600 });
  }

  forget(host: string, port: number): void {
    const field = hostField(host, port);
    const kept = this.lines().filter((l) => l.split(/\s+/)[0] !== field);
    if (existsSync(this.path)) writePrivateFile(this.path, kept.map((l) => l + '\n').join(''));
  }
}

export interface ConnectOptions {
  privateKey: string;
  knownHosts: KnownHosts;
  username?: string;
  readyTimeoutMs?: number;
  /** Keepalives detect a dead peer (a tunnel that must be reopened). */
  keepaliveIntervalMs?: number;
}

/** One SSH connection to a swarm host (ssh2), with helpers to run commands and send files. */
export class SshSession {
  private constructor(readonly client: Client, readonly target: SshTarget) {}

  static connect(target: SshTarget, opts: ConnectOptions): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let refused: Error | null = null;
      const onError = (err: Error): void => {
        client.end();
        reject(refused ?? err);
      };
      client.once('error', onError);
      client.once('ready', () => {
        client.off('error', onError);
        // Later errors surface as 'close' to whoever holds the session.
        client.on('error', () => undefined);
        resolve(new SshSession(client, target));
      });
      client.connect({
        host: target.host,
        port: target.port,
        username: opts.username ?? 'root',
        privateKey: opts.privateKey,
        readyTimeout: opts.readyTimeoutMs ?? 20_000,
        keepaliveInterval: opts.keepaliveIntervalMs ?? 10_000,
        keepaliveCountMax: 3,
        algorithms: { serverHostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256'] },
        hostVerifier: (key: Buffer): boolean => {
          try {
            opts.knownHosts.verify(target, key);
            return true;
          } catch (err) {
            refused = err as Error;
            return false;
          }
        },
      });
    });
  }

  /**
   * Connects, retrying while a fresh server boots (connection refused, timeouts, its key not yet
   * installed) until `deadline`; a changed host key is final.
   */
  static async connectWhenReady(
    target: SshTarget,
    opts: ConnectOptions & { deadline: number; retryMs?: number; onWaiting?: (elapsedMs: number) => void; waitingEveryMs?: number },
  ): Promise<SshSession> {
    const started = Date.now();
    let told = 0;
    for (;;) {
      try {
        return await SshSession.connect(target, opts);
      } catch (err) {
        if (err instanceof HostKeyChangedError || Date.now() + (opts.retryMs ?? 2000) > opts.deadline) throw err;
        // The operator sees the wait, not silence: once at first, then every `waitingEveryMs`.
        const elapsed = Date.now() - started;
        if (told === 0 || elapsed - told >= (opts.waitingEveryMs ?? 15_000)) {
          told = Math.max(1, elapsed);
          opts.onWaiting?.(elapsed);
        }
        await sleep(opts.retryMs ?? 2000);
      }
    }
  }

  private openExec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => this.client.exec(command, (err, channel) => (err ? reject(err) : resolve(channel))));
  }

  /** Runs a command; `stdin` (a secret, a file) is written to it and closed. */
  async exec(command: string, opts: { stdin?: string | Buffer | Readable; timeoutMs?: number } = {}): Promise<ExecResult> {
    const channel = await this.openExec(command);
    let stdout = '';
    let stderr = '';
    channel.on('data', (d: Buffer) => (stdout += d.toString()));
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<ExecResult>((resolve) => {
      let code: number | null = null;
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => resolve({ code, stdout, stderr }));
    });
    if (opts.stdin === undefined) channel.end();
    else if (typeof opts.stdin === 'string' || Buffer.isBuffer(opts.stdin)) channel.end(opts.stdin);
    else opts.stdin.pipe(channel);
    const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        channel.close();
        reject(new Error(`${this.target.name}: \`${command.slice(0, 60)}\` did not finish within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Streams a command's output (e.g. `journalctl -f`) until it exits or `signal` aborts it. */
  async stream(command: string, out: Writable, err: Writable, signal?: AbortSignal): Promise<number | null> {
    const channel = await this.openExec(command);
    channel.pipe(out, { end: false });
    channel.stderr.pipe(err, { end: false });
    channel.end();
    return new Promise((resolve) => {
      let code: number | null = null;
      const onAbort = (): void => {
        channel.close();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(code);
      });
    });
  }

  close(): void {
    this.client.end();
  }
}
