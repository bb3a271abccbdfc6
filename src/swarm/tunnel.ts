import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SwarmLog } from './log.js';
import { HostKeyChangedError, SshSession, type ExecResult, type KnownHosts, type SshTarget } from './ssh.js';

/**
 * Receive window of a tunnel channel: what the host's sshd may send that the coordinator has not
 * consumed yet. It must cover the link's bandwidth × RTT, and must not be much more: OpenSSH reads
 * a forwarded connection ahead into the channel's buffer as long as the window allows, and once
 * that buffer holds megabytes (the coordinator or the link slower than the worker for a moment)
 * sshd degenerates. Each turn of its loop reads 32 KB and sends one packet of at most 32 KB
 * (ssh2's packet size, which it cannot raise), and each read grows the buffer by a copy of all of
 * it (sshbuf's recallocarray): ~3 ms per MB held, so a 5 MB buffer sent ~1.6 MB/s and stayed that
 * large for as long as the worker kept sending, with sshd busy on a core of the worker's host.
 * With 16 MiB the tunnel stalled for 1–4 s in most runs (and a worker's keepalive could time out
 * behind the queue); with 4 MiB it never did (bench/RESULTS.md): 66–82 MB/s at 30 ms RTT and
 * ~38 MB/s at 80 ms, some 8–15 times what a 2-vCPU worker sends.
 */
export const TUNNEL_WINDOW_BYTES = 4 * 1024 * 1024;
/** The window is topped up each time this fraction of it has been consumed, so it stays nearly whole. */
const TOP_UP_FRACTION = 8;

interface ChannelInternals {
  incoming?: { window?: number };
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { channelWindowAdjust?: (id: number, bytes: number) => void } };
}

/**
 * Keeps `bytes` of window open on an ssh2 channel: what sshd may still send (the window it holds)
 * plus what it sent that the coordinator has not read (the channel's buffer) is topped up to
 * `bytes` as the coordinator reads, so backpressure holds however the reader takes its chunks, with
 * ssh2's own count kept exact (it drops data at a zero window). Topping up only at half (as ssh2
 * does) would leave half the window idle half the time.
 * Reaches into ssh2's channel state; if that moves, the channel keeps ssh2's default window.
 */
function widenReceiveWindow(channel: Duplex, bytes: number): void {
  const { incoming, outgoing, _client } = channel as unknown as ChannelInternals;
  const protocol = _client?._protocol;
  if (typeof incoming?.window !== 'number' || typeof outgoing?.id !== 'number' || typeof protocol?.channelWindowAdjust !== 'function') return;
  const topUp = (): void => {
    const outstanding = incoming.window! + channel.readableLength;
    if (outgoing.state !== 'open' || outstanding > bytes - bytes / TOP_UP_FRACTION) return;
    incoming.window! += bytes - outstanding;
    protocol.channelWindowAdjust!(outgoing.id!, bytes - outstanding);
  };
  topUp();
  channel.on('data', topUp);
}

export interface HostLinkOptions {
  target: SshTarget;
  privateKey: string;
  knownHosts: KnownHosts;
  /** The reverse tunnel: connections to the host's `bind:port` are handed to `serve` (the coordinator's gRPC server). Null: SSH only (direct mode). */
  tunnel: { bind: string; port: number; serve: (connection: Duplex) => void } | null;
  log: SwarmLog;
  /** Reconnect delays grow from `minRetryMs` to `maxRetryMs`. */
  minRetryMs?: number;
  maxRetryMs?: number;
  keepaliveIntervalMs?: number;
}

/**
 * The coordinator's lasting SSH connection to one swarm host: it opens the reverse tunnel (ssh2
 * `forwardIn`) through which the host's worker reaches the coordinator's loopback gRPC port, so a
 * coordinator behind NAT needs no open port, and reconnects whenever the connection drops.
 */
export class HostLink {
  private session: SshSession | null = null;
  private open = false;
  private closed = false;
  private readonly wake = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(readonly opts: HostLinkOptions) {}

  get name(): string {
    return this.opts.target.name;
  }

  /** Connected (and, in tunnel mode, forwarding). */
  get isOpen(): boolean {
    return this.open;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const min = this.opts.minRetryMs ?? 1000;
    let delay = min;
    while (!this.closed) {
      try {
        const session = await this.connect();
        delay = min;
        await new Promise<void>((resolve) => session.client.once('close', () => resolve()));
        this.open = false;
        this.session = null;
        if (!this.closed) this.opts.log({ server: this.name }, 'SSH link to the host lost: reconnecting');
      } catch (err) {
        this.open = false;
        const refused = err instanceof HostKeyChangedError;
        this.opts.log({ server: this.name, error: (err as Error).message }, refused ? 'host key changed: refusing to connect' : 'SSH link failed');
        delay = Math.min(delay * 2, this.opts.maxRetryMs ?? 30_000);
      }
      if (this.closed) break;
      await sleep(delay, undefined, { signal: this.wake.signal }).catch(() => undefined);
    }
  }

  private async connect(): Promise<SshSession> {
    const session = await SshSession.connect(this.opts.target, {
      privateKey: this.opts.privateKey,
      knownHosts: this.opts.knownHosts,
      keepaliveIntervalMs: this.opts.keepaliveIntervalMs ?? 10_000,
    });
    if (this.closed) {
      session.close();
      throw new Error('link closed');
    }
    const tunnel = this.opts.tunnel;
    if (tunnel) {
      // ssh2 leaves Nagle on: its small window adjustments and the coordinator's credits would wait for ACKs.
      session.client.setNoDelay(true);
      session.client.on('tcp connection', (_info, accept) => {
        const channel = accept();
        widenReceiveWindow(channel, TUNNEL_WINDOW_BYTES);
        // Without a listener a channel error would be an unhandled 'error' event: a crash.
        channel.on('error', () => channel.destroy());
        tunnel.serve(channel);
      });
      try {
        await new Promise<void>((resolve, reject) =>
          session.client.forwardIn(tunnel.bind, tunnel.port, (err) => (err ? reject(new Error(`forwarding ${tunnel.bind}:${tunnel.port} on the host: ${err.message}`)) : resolve())),
        );
      } catch (err) {
        session.close();
        throw err;
      }
    }
    this.session = session;
    this.open = true;
    this.opts.log({ server: this.name, host: this.opts.target.host, ...(tunnel ? { tunnel: `${tunnel.bind}:${tunnel.port} -> coordinator` } : {}) }, 'SSH link open');
    return session;
  }

  /** Runs a command on the host over the open link, or over a connection of its own while the link is down. */
  async exec(command: string, timeoutMs = 60_000): Promise<ExecResult> {
    if (this.session) return this.session.exec(command, { timeoutMs });
    const session = await SshSession.connect(this.opts.target, { privateKey: this.opts.privateKey, knownHosts: this.opts.knownHosts });
    try {
      return await session.exec(command, { timeoutMs });
    } finally {
      session.close();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake.abort();
    this.session?.close();
    // A connection attempt in flight closes itself when it completes.
    await Promise.race([this.loop, sleep(2000, undefined, { ref: false })]);
    this.open = false;
  }
}
