import * as grpc from '@grpc/grpc-js';
import { tokensEqual } from './credentials.js';
import { SESSION_METADATA_KEY, TOKEN_METADATA_KEY, coordinatorService } from '../wire/contract.js';
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

/** A refusal the service turns into a gRPC status (FAILED_PRECONDITION for a stale lease, …). */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
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
  streamSamples(stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>): void;
}

function authorized(metadata: grpc.Metadata, token: string): boolean {
  const given = metadata.get(TOKEN_METADATA_KEY)[0];
  return typeof given === 'string' && tokensEqual(token, given);
}

const UNAUTHENTICATED = {
  code: grpc.status.UNAUTHENTICATED,
  details: `missing or wrong worker token (metadata ${TOKEN_METADATA_KEY})`,
};

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof RpcError) return { code: err.code, details: err.message };
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}

function unary<Req, Res>(
  token: string,
  handle: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    if (!authorized(call.metadata, token)) {
      callback(UNAUTHENTICATED);
      return;
    }
    Promise.resolve()
      .then(() => handle(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toStatus(err)),
      );
  };
}

/** Builds the gRPC server for the Coordinator service; every call is checked against the worker token. */
export function createGrpcServer(handlers: CoordinatorHandlers, token: string, maxMessageBytes: number): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(coordinatorService().service, {
    register: unary<RegisterRequest, RegisterResponse>(token, (req, call) => handlers.register(req, contextOf(call))),
    leaseShard: unary<LeaseShardRequest, LeaseShardResponse>(token, (req, call) => handlers.leaseShard(req, contextOf(call))),
    heartbeat: unary<HeartbeatRequest, HeartbeatResponse>(token, (req, call) => handlers.heartbeat(req, contextOf(call))),
    claimKeys: unary<ClaimKeysRequest, ClaimKeysResponse>(token, (req, call) => handlers.claimKeys(req, contextOf(call))),
    completeShard: unary<CompleteShardRequest, CompleteShardResponse>(token, (req, call) => handlers.completeShard(req, contextOf(call))),
    failShard: unary<FailShardRequest, FailShardResponse>(token, (req, call) => handlers.failShard(req, contextOf(call))),
    streamSamples: (stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>) => {
      if (!authorized(stream.metadata, token)) {
        stream.emit('error', UNAUTHENTICATED);
        return;
      }
      handlers.streamSamples(stream);
    },
  });
  return server;
}

/** A certificate and key the coordinator serves TLS with (`--direct` swarms pin the certificate). */
export interface TlsIdentity {
  certPem: Buffer;
  keyPem: Buffer;
}

/** Binds `address` in plain text, or with TLS when an identity is given. Resolves to the port. */
export function bindServer(server: grpc.Server, address: string, tls?: TlsIdentity): Promise<number> {
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.certPem, private_key: tls.keyPem }], false)
    : grpc.ServerCredentials.createInsecure();
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(new ListenError(address, err.message)) : resolve(port)));
  });
}

/** The coordinator could not listen where it was told (address in use, not local, malformed). */
export class ListenError extends Error {
  constructor(
    readonly address: string,
    reason: string,
  ) {
    super(`cannot listen on ${address}: ${reason}`);
    this.name = 'ListenError';
  }
}
