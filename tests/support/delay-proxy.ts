import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface DelayProxyOptions {
  /** Where connections are forwarded (a loopback address). */
  targetPort: number;
  targetHost?: string;
  /** Round-trip time added: every chunk is held rttMs / 2 in each direction. */
  rttMs: number;
  /**
   * Bytes held per direction of a connection before the sender is paused (like a TCP window:
   * the proxy never buffers more than this per direction).
   */
  maxQueuedBytes?: number;
  /** The proxy closes itself after this long, whatever its user does (a bound for tests and benches). */
  lifetimeMs?: number;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A userspace TCP proxy on 127.0.0.1 that delays every chunk by half the round trip in each
 * direction, for measuring and testing links with real latency on loopback. It can cut every
 * connection through it (a link failure), stall them (a blackholed link), and refuse new ones while `blocked`.
 */
export class DelayProxy {
  private readonly pairs = new Set<Pair>();
  /** The sockets of stalled connections, destroyed when the proxy closes. */
  private readonly stalled = new Set<Socket>();
  private readonly lifetime: NodeJS.Timeout;
  /** While true, new connections are closed at once (the link is down). */
  blocked = false;
  /** Bytes delivered client → target and target → client. */
  readonly bytes = { up: 0, down: 0 };
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private opts: DelayProxyOptions,
  ) {
    this.lifetime = setTimeout(() => void this.close(), opts.lifetimeMs ?? 15 * 60_000);
    this.lifetime.unref();
  }

  static async start(opts: DelayProxyOptions): Promise<DelayProxy> {
    // Half-open: an end from one side is passed on once the data before it has been delivered.
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new DelayProxy(server, (server.address() as AddressInfo).port, opts);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  setRtt(rttMs: number): void {
    this.opts = { ...this.opts, rttMs };
  }

  /**
   * Makes every connection through the proxy go silent without closing (a blackholed link: a NAT
   * entry gone, a cable pulled): nothing more is relayed either way, and neither end is told. New
   * connections are relayed as usual. Only keepalives find such a link dead.
   */
  stall(): void {
    for (const pair of this.pairs) {
      for (const socket of [pair.client, pair.upstream]) {
        socket.removeAllListeners('data');
        socket.removeAllListeners('end');
        socket.on('data', () => undefined);
        this.stalled.add(socket);
      }
    }
    this.pairs.clear();
  }

  /** Destroys every connection through the proxy now (both ends see a reset). */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    clearTimeout(this.lifetime);
    this.cut();
    for (const socket of this.stalled) socket.destroy();
    this.stalled.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.accepted++;
    if (this.blocked) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = connect({ port: this.opts.targetPort, host: this.opts.targetHost ?? '127.0.0.1', allowHalfOpen: true });
    upstream.setNoDelay(true);
    const pair = { client, upstream };
    this.pairs.add(pair);
    // A reset on one side resets the other; a clean close waits for both directions to finish.
    const reset = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    const closed = (): void => {
      if (client.destroyed && upstream.destroyed) this.pairs.delete(pair);
    };
    client.on('error', reset).on('close', closed);
    upstream.on('error', reset).on('close', closed);
    this.relay(client, upstream, (n) => (this.bytes.up += n));
    this.relay(upstream, client, (n) => (this.bytes.down += n));
  }

  /** Forwards `from` to `to`, each chunk released half a round trip after it arrived, in order. */
  private relay(from: Socket, to: Socket, count: (n: number) => void): void {
    const cap = this.opts.maxQueuedBytes ?? 16 * 1024 * 1024;
    const queue: { at: number; chunk: Buffer }[] = [];
    let head = 0;
    let queued = 0;
    let timer: NodeJS.Timeout | null = null;
    let waitingDrain = false;
    let ended = false;

    const release = (): void => {
      timer = null;
      if (to.destroyed) return;
      const now = performance.now();
      while (head < queue.length && queue[head]!.at <= now && !waitingDrain) {
        const { chunk } = queue[head++]!;
        queued -= chunk.length;
        count(chunk.length);
        if (!to.write(chunk)) {
          waitingDrain = true;
          to.once('drain', () => {
            waitingDrain = false;
            release();
          });
        }
      }
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
      if (from.isPaused() && queued < cap / 2) from.resume();
      schedule();
    };
    const schedule = (): void => {
      if (timer || waitingDrain) return;
      if (head >= queue.length) {
        if (ended) to.end();
        return;
      }
      timer = setTimeout(release, Math.max(0, queue[head]!.at - performance.now()));
    };

    from.on('data', (chunk: Buffer) => {
      queue.push({ at: performance.now() + this.opts.rttMs / 2, chunk });
      queued += chunk.length;
      if (queued >= cap) from.pause();
      schedule();
    });
    from.on('end', () => {
      ended = true;
      schedule();
    });
  }
}
