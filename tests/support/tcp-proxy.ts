import { createConnection, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy on loopback between workers and the coordinator, to cut the link between them:
 * `reset` destroys every connection and refuses new ones for a while (a dropped link); `blackhole`
 * stops forwarding in both directions for a while (a partition: bytes wait, nothing arrives).
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<Pair>();
  private refusingUntil = 0;
  private holding = false;
  private held: Pair[] = [];
  port = 0;

  constructor(private targetPort: number) {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
    return this.port;
  }

  /** Where new connections go (the coordinator restarted on another port). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  /** Drops every connection and refuses new ones for `ms`. */
  reset(ms: number): void {
    this.refusingUntil = Date.now() + ms;
    for (const pair of this.pairs) this.drop(pair);
  }

  /** Forwards nothing for `ms`, in either direction, on old and new connections; then resumes. */
  async blackhole(ms: number): Promise<void> {
    this.holding = true;
    for (const pair of this.pairs) this.hold(pair);
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const pair of held) this.pipe(pair);
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) this.drop(pair);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    if (Date.now() < this.refusingUntil) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
    const pair = { client, upstream };
    this.pairs.add(pair);
    for (const socket of [client, upstream]) {
      socket.on('error', () => this.drop(pair));
      socket.on('close', () => this.drop(pair));
    }
    if (this.holding) this.hold(pair);
    else this.pipe(pair);
  }

  private pipe(pair: Pair): void {
    if (pair.client.destroyed || pair.upstream.destroyed) return;
    pair.client.pipe(pair.upstream);
    pair.upstream.pipe(pair.client);
  }

  private hold(pair: Pair): void {
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    pair.client.pause();
    pair.upstream.pause();
    this.held.push(pair);
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
