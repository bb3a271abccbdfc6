import * as grpc from '@grpc/grpc-js';
import { MAX_MESSAGE_BYTES, TOKEN_METADATA_KEY, coordinatorService } from '../wire/contract.js';
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

/** A typed, promise-based client of the Coordinator service that sends the worker token on every call. */
export class CoordinatorClient {
  private readonly client: grpc.Client;
  private readonly metadata = new grpc.Metadata();

  /** `ca`: the coordinator's certificate, pinned as the only trusted root (TLS); none: plain text. */
  constructor(address: string, token: string, ca?: Buffer) {
    const Service = coordinatorService();
    this.client = new Service(address, ca ? grpc.credentials.createSsl(ca) : grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.keepalive_time_ms': 20_000,
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5000,
    });
    this.metadata.set(TOKEN_METADATA_KEY, token);
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
