import { EventEmitter } from 'node:events';
import { constants as h2, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import {
  BULK_ACTOR,
  BULK_CONTENT_TYPE,
  BULK_FENCING,
  BULK_PATH,
  BULK_SHARD,
  BulkFrameDecoder,
  BulkFrameError,
  encodeCredits,
  statusHeaders,
} from '../wire/bulk.js';
import { SESSION_METADATA_KEY, TOKEN_METADATA_KEY, type CreditGrant, type SampleMessage } from '../wire/contract.js';
import { MAX_HELD_CHUNKS, MAX_UNARY_CHUNKS, limitChunks } from '../wire/http2-chunks.js';
import { http2ServersOf } from '../wire/http2-windows.js';
import { REASON_METADATA_KEY } from '../wire/reasons.js';
import { tokensEqual } from './credentials.js';

type Trailers = Record<string, string>;

/** How long a failed stream waits for its worker to stop sending before it is reset. */
const FAILED_STREAM_GRACE_MS = 2000;

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  return typeof value === 'string' ? value : '';
}

/** Ends a request without reading its body: the answer is in the response headers (as a gRPC "trailers-only" reply). */
function refuse(stream: ServerHttp2Stream, code: grpc.status, details: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 200, 'content-type': BULK_CONTENT_TYPE, ...statusHeaders({ code, details }) }, { endStream: true });
  // NO_ERROR after the response: the worker stops sending what the coordinator will not read.
  stream.close(h2.NGHTTP2_NO_ERROR);
}

/** A decimal id from a header: a safe integer, or null. */
function idOf(value: string): number | null {
  if (!/^\d{1,16}$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * One bulk sample stream (src/wire/bulk.ts) as serveSampleStream sees a gRPC one: 'data' with a
 * SampleMessage per frame (the first one, empty, names the lease), 'end', 'cancelled'; write() of
 * credit grants, pause() and resume() (HTTP/2 flow control then holds the worker back), end(); an
 * 'error' emitted with {code, details, metadata} is the status the worker gets in the trailers.
 */
export class BulkSampleStream extends EventEmitter {
  readonly metadata = new grpc.Metadata();
  private readonly decoder = new BulkFrameDecoder();
  private trailers: Trailers = statusHeaders({ code: grpc.status.OK, details: '' });
  private finished = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly lease: { actorId: string; shardId: number; fencingToken: number },
    session: string,
  ) {
    super();
    this.metadata.set(SESSION_METADATA_KEY, session);
    stream.respond({ ':status': 200, 'content-type': BULK_CONTENT_TYPE }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(this.trailers));
    this.on('error', (err: { code?: grpc.status; details?: string; metadata?: grpc.Metadata }) => {
      if (this.finished) return;
      this.finished = true;
      const reason = err.metadata?.get(REASON_METADATA_KEY)[0];
      this.trailers = statusHeaders({ code: err.code ?? grpc.status.INTERNAL, details: err.details ?? 'sample stream failed', ...(typeof reason === 'string' ? { reason } : {}) });
      stream.end();
      // The worker may still be sending: what arrives is dropped unread, and the stream is reset
      // once the worker had time to read the status (a reset sent at once can overtake the
      // trailers), or at the latest then if the trailers cannot go out (a worker that opened no window).
      stream.resume();
      setTimeout(() => stream.close(h2.NGHTTP2_NO_ERROR), FAILED_STREAM_GRACE_MS).unref();
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.finished) return;
      let frames;
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        const status = err instanceof BulkFrameError ? err.status : grpc.status.INTERNAL;
        this.emit('error', { code: status, details: (err as Error).message });
        return;
      }
      for (const samples of frames) this.emit('data', { ...this.lease, samples } satisfies SampleMessage);
    });
    stream.on('end', () => {
      if (this.finished) return;
      if (!this.decoder.atBoundary) {
        this.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'the sample stream ended inside a frame' });
        return;
      }
      this.emit('end');
    });
    stream.on('close', () => {
      if (this.finished) return;
      this.finished = true;
      this.emit('cancelled');
    });
    stream.on('error', () => undefined);
    // The lease comes first, as the first message of a gRPC stream, once serveSampleStream listens.
    process.nextTick(() => {
      if (!this.finished) this.emit('data', { ...this.lease, samples: [] } satisfies SampleMessage);
    });
  }

  write(grant: CreditGrant): boolean {
    if (this.finished || this.stream.destroyed) return false;
    return this.stream.write(encodeCredits(grant.credits));
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  end(): this {
    if (this.finished) return this;
    this.finished = true;
    this.stream.end();
    return this;
  }
}

const routed = new WeakSet<object>();

/**
 * Serves BULK_PATH on every HTTP/2 server `server` listens with (call after each bind and injector,
 * as widenReceiveWindows), ahead of grpc-js, which would answer it UNIMPLEMENTED. The worker token
 * is checked on the request headers before a byte of the body is read, as for the gRPC calls.
 * Being first to see every stream, it also bounds the small DATA chunks each may make the
 * coordinator hold (src/wire/http2-chunks.ts): a sample stream's unread ones, a gRPC call's all.
 */
export function routeBulkStreams(server: grpc.Server, token: string, serve: (stream: BulkSampleStream) => void, onChunkLimit: (path: string) => void): void {
  for (const h2server of http2ServersOf(server)) {
    if (routed.has(h2server)) continue;
    routed.add(h2server);
    const grpcListeners = h2server.listeners('stream') as ((...args: unknown[]) => void)[];
    h2server.removeAllListeners('stream');
    h2server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => {
      if (headers[':path'] !== BULK_PATH) {
        // Every gRPC call the coordinator serves is unary (the gRPC sample stream is refused: src/coordinator/service.ts).
        limitChunks(stream, 'total', MAX_UNARY_CHUNKS, () => onChunkLimit(String(headers[':path'])));
        for (const listener of grpcListeners) listener.call(h2server, stream, headers, ...rest);
        return;
      }
      stream.on('error', () => undefined);
      if (!tokensEqual(token, header(headers, TOKEN_METADATA_KEY))) return refuse(stream, grpc.status.UNAUTHENTICATED, `missing or wrong worker token (header ${TOKEN_METADATA_KEY})`);
      if (headers[':method'] !== 'POST' || header(headers, 'content-type') !== BULK_CONTENT_TYPE) {
        return refuse(stream, grpc.status.INVALID_ARGUMENT, `a sample stream is a POST of ${BULK_CONTENT_TYPE}`);
      }
      const shardId = idOf(header(headers, BULK_SHARD));
      const fencingToken = idOf(header(headers, BULK_FENCING));
      const actorId = header(headers, BULK_ACTOR);
      if (shardId === null || fencingToken === null || actorId === '' || actorId.length > 256) {
        return refuse(stream, grpc.status.INVALID_ARGUMENT, `a sample stream names its lease in ${BULK_ACTOR}, ${BULK_SHARD} and ${BULK_FENCING}`);
      }
      limitChunks(stream, 'held', MAX_HELD_CHUNKS, () => onChunkLimit(BULK_PATH));
      serve(new BulkSampleStream(stream, { actorId, shardId, fencingToken }, header(headers, SESSION_METADATA_KEY)));
    });
  }
}

