import { connect, type Socket } from 'node:net';

/**
 * A minimal HTTP/2 client that writes its own frames, for attacks Node's client cannot make (it
 * coalesces writes into DATA frames of up to 16 KB): one request on stream 1, headers as HPACK
 * literals, DATA frames of any size. It acknowledges the server's SETTINGS and records what ends
 * the stream or the connection. It waits for the server's connection window before sending.
 */
export class RawH2 {
  /** RST_STREAM code for stream 1, once the server reset it. */
  resetCode: number | null = null;
  /** GOAWAY error code, once the server sent one. */
  goawayCode: number | null = null;
  closed = false;
  /** The DATA stream 1 brought back (a bulk stream's credit grants). */
  readonly body: Buffer[] = [];
  private pending = Buffer.alloc(0);
  private pings = 0;
  private readonly pingAcks = new Map<string, () => void>();
  private windowOpened: () => void = () => undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static async open(host: string, port: number): Promise<RawH2> {
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new RawH2(socket);
    // Sending before the server's connection WINDOW_UPDATE would overrun HTTP/2's initial 64 KB.
    const opened = new Promise<void>((resolve) => (client.windowOpened = resolve));
    socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, Buffer.alloc(0))]));
    await Promise.race([opened, new Promise((r) => setTimeout(r, 2000))]);
    return client;
  }

  /** HEADERS on stream 1 (END_HEADERS; END_STREAM when `end`), the pseudo-headers first as HTTP/2 requires. */
  request(headers: Record<string, string>, end = false): void {
    const entries = Object.entries(headers).sort(([a], [b]) => Number(!a.startsWith(':')) - Number(!b.startsWith(':')));
    const block = Buffer.concat(entries.map(([name, value]) => literal(name, value)));
    this.socket.write(frame(0x1, 0x4 | (end ? 0x1 : 0), 1, block));
  }

  /**
   * `count` DATA frames on stream 1, each carrying `payload` and followed by `fillerBytes` of
   * frames of an unknown type (which HTTP/2 says to ignore, and which use no window), in writes of
   * at most ~1 MB. Resolves once written.
   */
  async data(payload: Buffer, count: number, fillerBytes = 0): Promise<void> {
    const filler: Buffer[] = [];
    for (let left = fillerBytes; left > 0; left -= 16_384) filler.push(frame(0xfa, 0, 0, Buffer.alloc(Math.min(left, 16_384))));
    const one = Buffer.concat([frame(0x0, 0, 1, payload), ...filler]);
    const perWrite = Math.max(1, Math.floor((1 << 20) / one.length));
    for (let sent = 0; sent < count && !this.closed; ) {
      const n = Math.min(perWrite, count - sent);
      const ok = this.socket.write(Buffer.concat(Array.from({ length: n }, () => one)));
      sent += n;
      if (!ok) await new Promise<void>((resolve) => this.socket.once('drain', resolve).once('close', resolve));
    }
  }

  /** A PING, resolved by its ACK: the server handles frames in order, so all sent before it were read. */
  ping(): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.pings, 4);
    return new Promise((resolve) => {
      this.pingAcks.set(payload.toString('hex'), resolve);
      this.socket.write(frame(0x6, 0, 0, payload));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) return;
      const type = this.pending[3]!;
      const flags = this.pending[4]!;
      const stream = this.pending.readUInt32BE(5) & 0x7fffffff;
      const body = this.pending.subarray(9, 9 + length);
      this.pending = this.pending.subarray(9 + length);
      if (type === 0x4 && (flags & 0x1) === 0) this.socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0)));
      else if (type === 0x0 && stream === 1) this.body.push(Buffer.from(body));
      else if (type === 0x3 && stream === 1) this.resetCode ??= body.readUInt32BE(0);
      else if (type === 0x7) this.goawayCode ??= body.readUInt32BE(4);
      else if (type === 0x6 && (flags & 0x1) === 0) this.socket.write(frame(0x6, 0x1, 0, body));
      else if (type === 0x6) this.pingAcks.get(body.toString('hex'))?.();
      else if (type === 0x8 && stream === 0) this.windowOpened();
    }
  }
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function integer(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const bytes = [first | max];
  for (value -= max; value >= 128; value >>= 7) bytes.push((value & 0x7f) | 0x80);
  bytes.push(value);
  return Buffer.from(bytes);
}

/** "Literal header field without indexing, new name", no Huffman coding (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0]), integer(n.length, 7), n, integer(v.length, 7), v]);
}
