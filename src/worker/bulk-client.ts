import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import {
  BULK_ACTOR,
  BULK_CONTENT_TYPE,
  BULK_FENCING,
  BULK_PATH,
  BULK_SHARD,
  CreditDecoder,
  encodeBulkFrame,
  statusOf,
  type BulkStatus,
} from '../wire/bulk.js';
import { SESSION_METADATA_KEY, TOKEN_METADATA_KEY, type CreditGrant, type SampleMessage } from '../wire/contract.js';
import { REASON_METADATA_KEY } from '../wire/reasons.js';

/** As the gRPC channel's keepalive: a connection that stops answering pings fails its streams within seconds. */
const KEEPALIVE_MS = 5000;

/** The `http(s)://host:port` of a gRPC target (`host:port`, `dns:host:port`, `[v6]:port`). */
export function authorityOf(address: string, tls: boolean): string {
  const target = address.replace(/^dns:(\/\/[^/]*\/)?/, '');
  return `${tls ? 'https' : 'http'}://${target}`;
}

/** A failed stream, shaped as grpc-js's ServiceError (code, details, metadata with the refusal reason). */
function serviceError(code: grpc.status, details: string, reason?: string): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (reason) metadata.set(REASON_METADATA_KEY, reason);
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

/**
 * The worker's HTTP/2 connection for bulk sample streams (src/wire/bulk.ts), beside its gRPC
 * channel to the same address: opened on first use, pinged every few seconds, and opened again
 * after it closes or stops answering.
 */
export class BulkChannel {
  private session: http2.ClientHttp2Session | null = null;

  constructor(
    private readonly address: string,
    private readonly token: string,
    private readonly sessionSecret: string,
    private readonly ca?: Buffer,
  ) {}

  /** A sample stream; it opens its request with the lease of the first message written. */
  stream(): BulkSampleCall {
    return new BulkSampleCall((lease) => this.request(lease));
  }

  close(): void {
    this.session?.close();
    this.session = null;
  }

  private connection(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    // What this worker may send is set by the coordinator's windows (src/wire/http2-windows.ts).
    const session = http2.connect(authorityOf(this.address, this.ca !== undefined), {
      createConnection: (url: URL) => this.socketTo(url),
      // Node's default (10 MB) counts what is queued to send, and a 16 MiB window lets more than
      // that be queued; credits bound what this worker queues, so none, as grpc-js sets it.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    session.on('error', () => undefined);
    const keepalive = setInterval(() => {
      // A session closing or destroyed has its 'close' still to come: no ping on it (ping() would throw).
      if (session.closed || session.destroyed) return;
      const timeout = setTimeout(() => session.destroy(new Error('the coordinator stopped answering keepalive pings')), KEEPALIVE_MS);
      timeout.unref();
      if (!session.ping((err) => (err ? session.destroy(err) : clearTimeout(timeout)))) clearTimeout(timeout);
    }, KEEPALIVE_MS);
    keepalive.unref();
    session.on('close', () => {
      clearInterval(keepalive);
      if (this.session === session) this.session = null;
    });
    this.session = session;
    return session;
  }

  /**
   * The connection under the session: TLS with the pinned certificate as the only trusted root
   * (as the gRPC channel's), and Nagle off, as grpc-js sets it, so that HTTP/2's small frames
   * (window updates, acknowledgements) do not wait behind unacknowledged data.
   */
  private socketTo(url: URL): Duplex {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port);
    const socket = this.ca ? tls.connect({ host, port, ca: this.ca, ALPNProtocols: ['h2'], ...(isIP(host) ? {} : { servername: host }) }) : net.connect({ host, port });
    socket.setNoDelay(true);
    return socket;
  }

  private request(lease: { actorId: string; shardId: number; fencingToken: number }): http2.ClientHttp2Stream {
    return this.connection().request({
      ':method': 'POST',
      ':path': BULK_PATH,
      'content-type': BULK_CONTENT_TYPE,
      [TOKEN_METADATA_KEY]: this.token,
      [SESSION_METADATA_KEY]: this.sessionSecret,
      [BULK_ACTOR]: lease.actorId,
      [BULK_SHARD]: String(lease.shardId),
      [BULK_FENCING]: String(lease.fencingToken),
    });
  }
}

/**
 * One bulk sample stream, used as the gRPC one was: write() SampleMessages (the first one names
 * the lease and opens the request), 'data' with credit grants, 'drain', end(), cancel(); it ends
 * with 'end', or 'error' carrying a ServiceError (status, details, refusal reason).
 */
export class BulkSampleCall extends EventEmitter {
  private req: http2.ClientHttp2Stream | null = null;
  private status: BulkStatus | null = null;
  private settled = false;

  constructor(private readonly open: (lease: { actorId: string; shardId: number; fencingToken: number }) => http2.ClientHttp2Stream) {
    super();
  }

  /** Sends a message's samples as one frame; `written` runs once its bytes have left (handed to HTTP/2). */
  write(message: SampleMessage, written?: () => void): boolean {
    // After the end nothing is sent, and nobody should wait for a 'drain' that will not come.
    if (this.settled) return true;
    if (!this.req) this.start(message);
    if (message.samples.length === 0 || !this.req) {
      if (written) process.nextTick(written);
      return true;
    }
    const req = this.req;
    const buffers = encodeBulkFrame(message.samples);
    req.cork();
    let ok = true;
    buffers.forEach((buffer, i) => (ok = i === buffers.length - 1 && written ? req.write(buffer, () => written()) : req.write(buffer)));
    req.uncork();
    return ok;
  }

  end(): void {
    // A stream ended before anything was written has nothing to send: it ends as it is.
    if (!this.req) process.nextTick(() => this.settle(null));
    else this.req.end();
  }

  cancel(): void {
    if (this.settled) return;
    this.req?.close(http2.constants.NGHTTP2_CANCEL);
    this.settle(serviceError(grpc.status.CANCELLED, 'cancelled by the worker'));
  }

  private start(first: SampleMessage): void {
    let req: http2.ClientHttp2Stream;
    try {
      req = this.open({ actorId: first.actorId, shardId: first.shardId, fencingToken: first.fencingToken });
    } catch (err) {
      process.nextTick(() => this.settle(serviceError(grpc.status.UNAVAILABLE, (err as Error).message)));
      return;
    }
    this.req = req;
    const credits = new CreditDecoder();
    // A failed status ends the call at once, as a gRPC call's does: the worker stops sending.
    const onStatus = (headers: http2.IncomingHttpHeaders): void => {
      this.status ??= statusOf(headers);
      if (!this.status || this.status.code === grpc.status.OK) return;
      req.close(http2.constants.NGHTTP2_CANCEL);
      this.settle(serviceError(this.status.code, this.status.details, this.status.reason));
    };
    req.on('response', onStatus);
    req.on('trailers', onStatus);
    req.on('data', (chunk: Buffer) => {
      for (const n of credits.push(chunk)) this.emit('data', { credits: n } satisfies CreditGrant);
    });
    req.on('drain', () => this.emit('drain'));
    let failure = '';
    req.on('error', (err: Error) => (failure ||= `: ${err.message}`));
    req.on('close', () => {
      const status = this.status;
      if (!status) return this.settle(serviceError(grpc.status.UNAVAILABLE, `the sample stream closed without a status (HTTP/2 code ${req.rstCode ?? 'none'})${failure}`));
      if (status.code === grpc.status.OK) return this.settle(null);
      this.settle(serviceError(status.code, status.details, status.reason));
    });
  }

  private settle(err: grpc.ServiceError | null): void {
    if (this.settled) return;
    this.settled = true;
    if (err) this.emit('error', err);
    else this.emit('end');
  }
}
