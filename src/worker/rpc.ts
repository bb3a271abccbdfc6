import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { BulkChannel, type BulkSampleCall } from './bulk-client.js';
import { MAX_MESSAGE_BYTES, SESSION_METADATA_KEY, TOKEN_METADATA_KEY, coordinatorService } from '../wire/contract.js';
import type {
  ClaimKeysRequest,
  ClaimKeysResponse,
  CompleteShardRequest,
  CompleteShardResponse,
  FailShardRequest,
  FailShardResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaseShardRequest,
  LeaseShardResponse,
  RegisterRequest,
  RegisterResponse,
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
  private readonly client: InstanceType<ReturnType<typeof coordinatorService>>;
  private readonly metadata = new grpc.Metadata();
  private readonly bulk: BulkChannel;

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
    const session = randomBytes(24).toString('base64url');
    this.metadata.set(TOKEN_METADATA_KEY, token);
    this.metadata.set(SESSION_METADATA_KEY, session);
    this.bulk = new BulkChannel(address, token, session, ca);
  }

  register(req: RegisterRequest): Promise<RegisterResponse> {
    return this.unary((md, opts, done) => this.client.register(req, md, opts, done), 10_000);
  }
  leaseShard(req: LeaseShardRequest): Promise<LeaseShardResponse> {
    return this.unary((md, opts, done) => this.client.leaseShard(req, md, opts, done), 10_000);
  }
  heartbeat(req: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.unary((md, opts, done) => this.client.heartbeat(req, md, opts, done), 10_000);
  }
  claimKeys(req: ClaimKeysRequest): Promise<ClaimKeysResponse> {
    return this.unary((md, opts, done) => this.client.claimKeys(req, md, opts, done), 30_000);
  }
  completeShard(req: CompleteShardRequest): Promise<CompleteShardResponse> {
    return this.unary((md, opts, done) => this.client.completeShard(req, md, opts, done), 300_000);
  }
  failShard(req: FailShardRequest): Promise<FailShardResponse> {
    return this.unary((md, opts, done) => this.client.failShard(req, md, opts, done), 30_000);
  }

  /** A sample stream on the bulk path (src/wire/bulk.ts), the one workers use. */
  streamSamples(): BulkSampleCall {
    return this.bulk.stream();
  }

  close(): void {
    this.bulk.close();
    this.client.close();
  }

  private unary<Res>(
    call: (metadata: grpc.Metadata, options: grpc.CallOptions, done: grpc.requestCallback<Res>) => grpc.ClientUnaryCall,
    timeoutMs: number,
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      call(this.metadata, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }
}
