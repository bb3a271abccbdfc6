import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { MAX_MESSAGE_BYTES, SESSION_METADATA_KEY, TOKEN_METADATA_KEY, coordinatorService } from '../wire/contract.js';
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

export type RpcStatusError = grpc.ServiceError;

export function isStatus(err: unknown, code: grpc.status): boolean {
  return typeof err === 'object' && err !== null && (err as grpc.ServiceError).code === code;
}

/**
 * A typed, promise-based client of the Coordinator service. Every call carries the worker token
 * and this process's session secret (the coordinator binds the actor id to it at Register, so no
 * other client can act as this actor). Keepalive pings with a short timeout make calls and streams
 * on a dead connection fail within seconds instead of waiting forever.
 */
export class CoordinatorClient {
  private readonly client: grpc.Client;
  private readonly metadata = new grpc.Metadata();

  /** `ca`: the coordinator's certificate, pinned as the only trusted root (TLS); none: plain text. */
  constructor(address: string, token: string, ca?: Buffer) {
    const Service = coordinatorService();
    this.client = new Service(address, ca ? grpc.credentials.createSsl(ca) : grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 5000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5000,
      // One connection per client: grpc-js otherwise shares a connection among all clients of a
      // process, so many actors in one process (tests, benches) would share one connection's stream
      // limit (MAX_CONCURRENT_STREAMS) and queue their calls behind each other's streams.
      'grpc.use_local_subchannel_pool': 1,
    });
    this.metadata.set(TOKEN_METADATA_KEY, token);
    this.metadata.set(SESSION_METADATA_KEY, randomBytes(24).toString('base64url'));
  }

  register(req: RegisterRequest): Promise<RegisterResponse> {
    return this.unary('register', req, 10_000);
  }
  leaseShard(req: LeaseShardRequest): Promise<LeaseShardResponse> {
    return this.unary('leaseShard', req, 10_000);
  }
  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.unary('heartbeat', req, 10_000);
  }
  claimKeys(req: ClaimKeysRequest): Promise<ClaimKeysResponse> {
    return this.unary('claimKeys', req, 30_000);
  }
  completeShard(req: CompleteShardRequest): Promise<CompleteShardResponse> {
    return this.unary('completeShard', req, 300_000);
  }
  failShard(req: FailShardRequest): Promise<FailShardResponse> {
    return this.unary('failShard', req, 30_000);
  }

  streamSamples(): grpc.ClientDuplexStream<SampleMessage, CreditGrant> {
    const method = (this.client as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<SampleMessage, CreditGrant>>)['streamSamples']!;
    return method.call(this.client, this.metadata);
  }

  close(): void {
    this.client.close();
  }

  private unary<Req, Res>(name: string, req: Req, timeoutMs: number): Promise<Res> {
    const method = (this.client as unknown as Record<string, Function>)[name]!;
    return new Promise((resolve, reject) => {
      method.call(
        this.client,
        req,
        this.metadata,
        { deadline: Date.now() + timeoutMs },
        (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)),
      );
    });
  }
}
