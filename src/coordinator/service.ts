import * as grpc from '@grpc/grpc-js';
import { CahError } from '../errors.js';
import { tokensEqual } from './credentials.js';
import { SESSION_METADATA_KEY, TOKEN_METADATA_KEY, coordinatorService, type CoordinatorServiceImplementation } from '../wire/contract.js';
import type { Duplex } from 'node:stream';
import { MAX_CONCURRENT_STREAMS, http2ServersOf, widenReceiveWindows } from '../wire/http2-windows.js';
import { BULK_PATH } from '../wire/bulk.js';
import { routeBulkStreams } from './bulk-stream.js';
import { reasonMetadata, type RefusalReason } from '../wire/reasons.js';
import type {
  ClaimKeysRequest,
  ClaimKeysResponse,
  CompleteShardRequest,
  CompleteShardResponse,
  CreditGrant,
  FailShardRequest,
  FailShardResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaseShardRequest,
  LeaseShardResponse,
  RegisterRequest,
  RegisterResponse,
  SampleMessage,
} from '../wire/contract.js';

/** A refusal the service turns into a gRPC status (FAILED_PRECONDITION for a stale lease, …) and, when declared, its reason. */
export class RpcError extends CahError {
  constructor(
    readonly status: grpc.status,
    message: string,
    readonly reason?: RefusalReason,
  ) {
    super('CAH_RPC_REFUSED', message);
  }
}

/** Who made a call: the connection's peer and the worker process's session secret (metadata). */
export interface CallContext {
  peer: string;
  session: string;
}

export function sessionOf(metadata: grpc.Metadata): string {
  const value = metadata.get(SESSION_METADATA_KEY)[0];
  return typeof value === 'string' ? value : '';
}

function contextOf(call: grpc.ServerUnaryCall<unknown, unknown>): CallContext {
  return { peer: call.getPeer(), session: sessionOf(call.metadata) };
}

/** What the gRPC layer needs from the head; the Coordinator implements it. */
export interface CoordinatorHandlers {
  register(req: RegisterRequest, ctx: CallContext): RegisterResponse | Promise<RegisterResponse>;
  leaseShard(req: LeaseShardRequest, ctx: CallContext): LeaseShardResponse;
  heartbeat(req: HeartbeatRequest, ctx: CallContext): HeartbeatResponse;
  claimKeys(req: ClaimKeysRequest, ctx: CallContext): ClaimKeysResponse;
  completeShard(req: CompleteShardRequest, ctx: CallContext): Promise<CompleteShardResponse>;
  failShard(req: FailShardRequest, ctx: CallContext): Promise<FailShardResponse>;
  /** A bulk sample stream (src/coordinator/bulk-stream.ts), presented as a gRPC one. */
  streamSamples(stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>): void;
  /** A stream was reset for holding too many small DATA chunks (src/wire/http2-chunks.ts): a broken or hostile peer. */
  chunkLimitReached?(path: string): void;
}

function authorized(metadata: grpc.Metadata, token: string): boolean {
  const given = metadata.get(TOKEN_METADATA_KEY)[0];
  return typeof given === 'string' && tokensEqual(token, given);
}

const UNAUTHENTICATED = {
  code: grpc.status.UNAUTHENTICATED,
  details: `missing or wrong worker token (metadata ${TOKEN_METADATA_KEY})`,
};

/**
 * Unary requests are small (ClaimKeys sends 256 keys at most); only the sample stream carries
 * images. Capping them keeps one authenticated call from making the coordinator buffer 64 MiB.
 */
export const MAX_UNARY_MESSAGE_BYTES = 1024 * 1024;

/**
 * Lowers the receive limit of one call. grpc-js has a single server-wide limit; the call's decoder
 * (private) checks each message's length prefix before buffering it. Called before the first read,
 * when nothing has been decoded yet. Throws if grpc-js's internals moved (a test pins this).
 */
function limitReceive(call: grpc.ServerInterceptingCallInterface, maxBytes: number): void {
  const base = call as unknown as { decoder?: { maxReadMessageLength?: unknown }; maxReceiveMessageSize?: unknown };
  if (typeof base.decoder?.maxReadMessageLength !== 'number' || typeof base.maxReceiveMessageSize !== 'number') {
    throw new Error('grpc-js call internals changed: update limitReceive in src/coordinator/service.ts');
  }
  base.decoder.maxReadMessageLength = maxBytes;
  base.maxReceiveMessageSize = maxBytes;
}

/**
 * The first thing every call meets: the worker token is checked on the request's headers, before
 * grpc-js reads a byte of its body (the body is read only once the handler starts, which a refused
 * call never does), so an unauthenticated peer cannot make the coordinator buffer a message.
 */
function guard(token: string): grpc.ServerInterceptor {
  return (method, call) => {
    if (!method.requestStream) limitReceive(call, MAX_UNARY_MESSAGE_BYTES);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            if (authorized(metadata, token)) pass(metadata);
            else call.sendStatus(UNAUTHENTICATED);
          },
        }),
    });
  };
}

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof RpcError) return { code: err.status, details: err.message, ...(err.reason ? { metadata: reasonMetadata(err.reason) } : {}) };
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}

function unary<Req, Res>(handle: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => handle(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toStatus(err)),
      );
  };
}

/** What a worker calling the gRPC sample stream hears: it is older than the coordinator. */
export const GRPC_SAMPLE_STREAM_REFUSED = `samples are sent on the bulk sample stream (POST ${BULK_PATH}); this worker is older than its coordinator: run the coordinator's version of cah on it`;

/**
 * Builds the gRPC server for the Coordinator service; every call is checked against the worker
 * token on its headers, streams per connection are capped, and `bindServer` widens the HTTP/2
 * receive windows for links with real round trips (src/wire/http2-windows.ts).
 */
export function createGrpcServer(handlers: CoordinatorHandlers, token: string, maxMessageBytes: number): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
    interceptors: [guard(token)],
  });
  const implementation: CoordinatorServiceImplementation = {
    Register: unary((req, call) => handlers.register(req, contextOf(call))),
    LeaseShard: unary((req, call) => handlers.leaseShard(req, contextOf(call))),
    Heartbeat: unary((req, call) => handlers.heartbeat(req, contextOf(call))),
    ClaimKeys: unary((req, call) => handlers.claimKeys(req, contextOf(call))),
    CompleteShard: unary((req, call) => handlers.completeShard(req, contextOf(call))),
    FailShard: unary((req, call) => handlers.failShard(req, contextOf(call))),
    // Samples travel on the bulk stream. This call stays in the contract, whose SampleMessage the
    // bulk frames reuse, but is refused: grpc-js holds each DATA chunk of a message until it is
    // whole, ~120 bytes of heap per chunk, which one-byte frames turned into gigabytes.
    StreamSamples: (stream) => stream.emit('error', { code: grpc.status.UNIMPLEMENTED, details: GRPC_SAMPLE_STREAM_REFUSED }),
  };
  server.addService(coordinatorService().service, implementation);
  bulkRoutes.set(server, {
    token,
    serve: (stream) => handlers.streamSamples(stream as unknown as grpc.ServerDuplexStream<SampleMessage, CreditGrant>),
    onChunkLimit: (path) => handlers.chunkLimitReached?.(path),
  });
  return server;
}

/** What each server built here serves on the bulk sample path (src/wire/bulk.ts). */
const bulkRoutes = new WeakMap<grpc.Server, { token: string; serve: Parameters<typeof routeBulkStreams>[2]; onChunkLimit: Parameters<typeof routeBulkStreams>[3] }>();

/** Every connection each server built here has taken (TCP, TLS or a tunnel channel), until it closes. */
const connections = new WeakMap<grpc.Server, Set<Duplex>>();
const tracked = new WeakSet<object>();

/** After each bind or injector: wide receive windows, the bulk sample path ahead of grpc-js, and its connections tracked. */
function adaptHttp2Servers(server: grpc.Server): void {
  widenReceiveWindows(server);
  const route = bulkRoutes.get(server);
  if (route) routeBulkStreams(server, route.token, route.serve, route.onChunkLimit);
  const open = connections.get(server) ?? new Set<Duplex>();
  connections.set(server, open);
  for (const h2server of http2ServersOf(server)) {
    if (tracked.has(h2server)) continue;
    tracked.add(h2server);
    h2server.on('connection', (socket: Duplex) => {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
    });
  }
}

/**
 * Destroys what is left of `server`'s connections once it has shut down. grpc-js ends each one,
 * which waits for the peer's own end: a worker whose link went silent (a NAT entry gone, a cable
 * pulled) never sends it, and the coordinator would not exit until TCP gave up, minutes later.
 */
export function destroyConnections(server: grpc.Server): void {
  const open = connections.get(server);
  if (!open) return;
  for (const socket of open) socket.destroy();
  open.clear();
}

/** A certificate and key the coordinator serves TLS with (`--direct` swarms pin the certificate). */
export interface TlsIdentity {
  certPem: Buffer;
  keyPem: Buffer;
}

/** Binds `address` in plain text, or with TLS when an identity is given, with wide receive windows. Resolves to the port. */
export function bindServer(server: grpc.Server, address: string, tls?: TlsIdentity): Promise<number> {
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.certPem, private_key: tls.keyPem }], false)
    : grpc.ServerCredentials.createInsecure();
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => {
      if (err) return reject(new ListenError(address, err.message));
      adaptHttp2Servers(server);
      resolve(port);
    });
  });
}

/**
 * Serves connections that arrive other than through a listening port (the swarm's SSH tunnel
 * channels) on `server`, in plain text, with the same handlers, token checks and receive windows.
 */
export function connectionInjector(server: grpc.Server): grpc.ConnectionInjector {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  adaptHttp2Servers(server);
  return injector;
}

/** The coordinator could not listen where it was told (address in use, not local, malformed). */
export class ListenError extends CahError {
  constructor(
    readonly address: string,
    reason: string,
  ) {
    super('CAH_LISTEN', `cannot listen on ${address}: ${reason}`);
  }
}
