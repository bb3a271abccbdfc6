import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateEd25519KeyPair } from '../../src/swarm/state.js';

/** OpenSSH's server; `.ci/run` installs it (openssh-server). */
export const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p)) ?? '/usr/sbin/sshd';

export interface SshdHostOptions {
  /** The host's own root directory: its files live under it (CAH_HOST_ROOT in its sessions). */
  root: string;
  /** sshd's configuration, host key and authorized_keys (kept out of the host root). */
  configDir: string;
  /** A loopback address of its own, 127.x.y.z. */
  address: string;
  port: number;
  authorizedKeys: string[];
}

/** The pids whose environment holds `NAME=value` (processes started in a host's SSH sessions). */
export function pidsWithEnv(name: string, value: string): number[] {
  const wanted = `${name}=${value}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(wanted)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** A process's descendants, from the ppid field of /proc/<pid>/stat. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) for (const child of children.get(stack.pop()!) ?? []) (out.push(child), stack.push(child));
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

async function waitForPort(address: string, port: number, child: ChildProcess, log: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd on ${address}:${port} exited (${child.exitCode}): ${readFileSync(log, 'utf8').trim()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, address);
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`sshd on ${address}:${port} did not listen within ${timeoutMs} ms`);
}

/**
 * A real OpenSSH host on its own loopback address, as a stand-in for a cloud server: its own host
 * key (generated at run time), the registered keys in its authorized_keys, and `SetEnv
 * CAH_HOST_ROOT` so that what runs there keeps its files under its own root directory.
 */
export class SshdHost {
  private child: ChildProcess | null = null;
  hostPublicKey = '';

  private constructor(readonly opts: SshdHostOptions) {}

  static async start(opts: SshdHostOptions): Promise<SshdHost> {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    mkdirSync(join(opts.root, 'root'), { recursive: true, mode: 0o700 });
    mkdirSync(opts.configDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(opts.configDir, 'authorized_keys'), opts.authorizedKeys.map((k) => k.trim() + '\n').join(''), { mode: 0o600 });
    const host = new SshdHost(opts);
    host.writeHostKey();
    host.writeConfig();
    await host.launch();
    return host;
  }

  get address(): string {
    return this.opts.address;
  }

  get root(): string {
    return this.opts.root;
  }

  private writeHostKey(): void {
    const pair = generateEd25519KeyPair();
    writeFileSync(join(this.opts.configDir, 'host_ed25519'), pair.private, { mode: 0o600 });
    this.hostPublicKey = pair.public.trim();
  }

  private writeConfig(): void {
    const dir = this.opts.configDir;
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${this.opts.port}`,
        `ListenAddress ${this.opts.address}`,
        `HostKey ${join(dir, 'host_ed25519')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'AllowTcpForwarding yes',
        // The reverse tunnel binds on this host's own address (all test hosts share one loopback).
        'GatewayPorts clientspecified',
        // Its own home too: the machine's ~/.bashrc (sourced by bash for SSH commands) is not the host's.
        `SetEnv CAH_HOST_ROOT=${this.opts.root} CAH_TUNNEL_BIND=${this.opts.address} HOME=${join(this.opts.root, 'root')}`,
        'PrintMotd no',
        'MaxStartups 100',
        'MaxSessions 50',
        'ClientAliveInterval 5',
        'ClientAliveCountMax 3',
        'LogLevel INFO',
        '',
      ].join('\n'),
    );
  }

  private async launch(): Promise<void> {
    const log = join(this.opts.configDir, 'sshd.log');
    const fd = openSync(log, 'a');
    this.child = spawn(SSHD, ['-D', '-e', '-f', join(this.opts.configDir, 'sshd_config')], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    await waitForPort(this.opts.address, this.opts.port, this.child, log, 10_000);
  }

  /** Every process of this host: sshd and its sessions, and what they started (found by CAH_HOST_ROOT). */
  processes(): number[] {
    const pids = new Set(pidsWithEnv('CAH_HOST_ROOT', this.opts.root));
    if (this.child?.pid && this.child.exitCode === null) {
      pids.add(this.child.pid);
      for (const pid of descendants(this.child.pid)) pids.add(pid);
    }
    return [...pids].filter(alive);
  }

  /** Stops sshd and every process started under it. */
  async stop(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      const pids = this.processes();
      if (pids.length === 0) break;
      for (const pid of pids) kill(pid, round < 10 ? 'SIGTERM' : 'SIGKILL');
      await sleep(100);
    }
    this.child = null;
  }

  /** A reboot: sshd and everything under it stopped, then sshd started again with the same key. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** The server was "rebuilt": a new host key, sshd restarted on the same address. */
  async regenerateHostKey(): Promise<void> {
    await this.stop();
    this.writeHostKey();
    await this.launch();
  }
}
