// Original file: proto/cah.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ClaimKeysRequest as _cah_v1_ClaimKeysRequest, ClaimKeysRequest__Output as _cah_v1_ClaimKeysRequest__Output } from '../../cah/v1/ClaimKeysRequest.js';
import type { ClaimKeysResponse as _cah_v1_ClaimKeysResponse, ClaimKeysResponse__Output as _cah_v1_ClaimKeysResponse__Output } from '../../cah/v1/ClaimKeysResponse.js';
import type { CompleteShardRequest as _cah_v1_CompleteShardRequest, CompleteShardRequest__Output as _cah_v1_CompleteShardRequest__Output } from '../../cah/v1/CompleteShardRequest.js';
import type { CompleteShardResponse as _cah_v1_CompleteShardResponse, CompleteShardResponse__Output as _cah_v1_CompleteShardResponse__Output } from '../../cah/v1/CompleteShardResponse.js';
import type { CreditGrant as _cah_v1_CreditGrant, CreditGrant__Output as _cah_v1_CreditGrant__Output } from '../../cah/v1/CreditGrant.js';
import type { FailShardRequest as _cah_v1_FailShardRequest, FailShardRequest__Output as _cah_v1_FailShardRequest__Output } from '../../cah/v1/FailShardRequest.js';
import type { FailShardResponse as _cah_v1_FailShardResponse, FailShardResponse__Output as _cah_v1_FailShardResponse__Output } from '../../cah/v1/FailShardResponse.js';
import type { HeartbeatRequest as _cah_v1_HeartbeatRequest, HeartbeatRequest__Output as _cah_v1_HeartbeatRequest__Output } from '../../cah/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _cah_v1_HeartbeatResponse, HeartbeatResponse__Output as _cah_v1_HeartbeatResponse__Output } from '../../cah/v1/HeartbeatResponse.js';
import type { LeaseShardRequest as _cah_v1_LeaseShardRequest, LeaseShardRequest__Output as _cah_v1_LeaseShardRequest__Output } from '../../cah/v1/LeaseShardRequest.js';
import type { LeaseShardResponse as _cah_v1_LeaseShardResponse, LeaseShardResponse__Output as _cah_v1_LeaseShardResponse__Output } from '../../cah/v1/LeaseShardResponse.js';
import type { RegisterRequest as _cah_v1_RegisterRequest, RegisterRequest__Output as _cah_v1_RegisterRequest__Output } from '../../cah/v1/RegisterRequest.js';
import type { RegisterResponse as _cah_v1_RegisterResponse, RegisterResponse__Output as _cah_v1_RegisterResponse__Output } from '../../cah/v1/RegisterResponse.js';
import type { SampleMessage as _cah_v1_SampleMessage, SampleMessage__Output as _cah_v1_SampleMessage__Output } from '../../cah/v1/SampleMessage.js';

export interface CoordinatorClient extends grpc.Client {
  /**
   * Claim candidate keys for a shard: the answer lists the keys that are new to the run (owned now
   * by this shard). Keys already claimed by another shard are duplicates and are dropped.
   */
  ClaimKeys(argument: _cah_v1_ClaimKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  ClaimKeys(argument: _cah_v1_ClaimKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  ClaimKeys(argument: _cah_v1_ClaimKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  ClaimKeys(argument: _cah_v1_ClaimKeysRequest, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Claim candidate keys for a shard: the answer lists the keys that are new to the run (owned now
   * by this shard). Keys already claimed by another shard are duplicates and are dropped.
   */
  claimKeys(argument: _cah_v1_ClaimKeysRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  claimKeys(argument: _cah_v1_ClaimKeysRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  claimKeys(argument: _cah_v1_ClaimKeysRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  claimKeys(argument: _cah_v1_ClaimKeysRequest, callback: grpc.requestCallback<_cah_v1_ClaimKeysResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * All samples of the shard were sent; the coordinator writes the output shard, then marks it done.
   */
  CompleteShard(argument: _cah_v1_CompleteShardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  CompleteShard(argument: _cah_v1_CompleteShardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  CompleteShard(argument: _cah_v1_CompleteShardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  CompleteShard(argument: _cah_v1_CompleteShardRequest, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  /**
   * All samples of the shard were sent; the coordinator writes the output shard, then marks it done.
   */
  completeShard(argument: _cah_v1_CompleteShardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  completeShard(argument: _cah_v1_CompleteShardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  completeShard(argument: _cah_v1_CompleteShardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  completeShard(argument: _cah_v1_CompleteShardRequest, callback: grpc.requestCallback<_cah_v1_CompleteShardResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The shard cannot be processed (unreadable source, ...); counts as one attempt.
   */
  FailShard(argument: _cah_v1_FailShardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  FailShard(argument: _cah_v1_FailShardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  FailShard(argument: _cah_v1_FailShardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  FailShard(argument: _cah_v1_FailShardRequest, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The shard cannot be processed (unreadable source, ...); counts as one attempt.
   */
  failShard(argument: _cah_v1_FailShardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  failShard(argument: _cah_v1_FailShardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  failShard(argument: _cah_v1_FailShardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  failShard(argument: _cah_v1_FailShardRequest, callback: grpc.requestCallback<_cah_v1_FailShardResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Liveness plus progress; renews the leases the actor holds.
   */
  Heartbeat(argument: _cah_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _cah_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _cah_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _cah_v1_HeartbeatRequest, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Liveness plus progress; renews the leases the actor holds.
   */
  heartbeat(argument: _cah_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _cah_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _cah_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _cah_v1_HeartbeatRequest, callback: grpc.requestCallback<_cah_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Ask for a shard (task). No shard available: has_shard = false and retry_after_ms.
   */
  LeaseShard(argument: _cah_v1_LeaseShardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  LeaseShard(argument: _cah_v1_LeaseShardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  LeaseShard(argument: _cah_v1_LeaseShardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  LeaseShard(argument: _cah_v1_LeaseShardRequest, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Ask for a shard (task). No shard available: has_shard = false and retry_after_ms.
   */
  leaseShard(argument: _cah_v1_LeaseShardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  leaseShard(argument: _cah_v1_LeaseShardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  leaseShard(argument: _cah_v1_LeaseShardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  leaseShard(argument: _cah_v1_LeaseShardRequest, callback: grpc.requestCallback<_cah_v1_LeaseShardResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * A worker announces itself; the answer names its actor id and the extraction/download settings.
   */
  Register(argument: _cah_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _cah_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _cah_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _cah_v1_RegisterRequest, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  /**
   * A worker announces itself; the answer names its actor id and the extraction/download settings.
   */
  register(argument: _cah_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _cah_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _cah_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _cah_v1_RegisterRequest, callback: grpc.requestCallback<_cah_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Samples flow up; credits flow down. The worker may send one sample per credit it holds.
   * The coordinator grants credits as its filter queue drains (backpressure). Workers send them on
   * the bulk sample stream (src/wire/bulk.ts), which reuses these messages; this call is refused
   * (UNIMPLEMENTED).
   */
  StreamSamples(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_cah_v1_SampleMessage, _cah_v1_CreditGrant__Output>;
  StreamSamples(options?: grpc.CallOptions): grpc.ClientDuplexStream<_cah_v1_SampleMessage, _cah_v1_CreditGrant__Output>;
  /**
   * Samples flow up; credits flow down. The worker may send one sample per credit it holds.
   * The coordinator grants credits as its filter queue drains (backpressure). Workers send them on
   * the bulk sample stream (src/wire/bulk.ts), which reuses these messages; this call is refused
   * (UNIMPLEMENTED).
   */
  streamSamples(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_cah_v1_SampleMessage, _cah_v1_CreditGrant__Output>;
  streamSamples(options?: grpc.CallOptions): grpc.ClientDuplexStream<_cah_v1_SampleMessage, _cah_v1_CreditGrant__Output>;
  
}

export interface CoordinatorHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Claim candidate keys for a shard: the answer lists the keys that are new to the run (owned now
   * by this shard). Keys already claimed by another shard are duplicates and are dropped.
   */
  ClaimKeys: grpc.handleUnaryCall<_cah_v1_ClaimKeysRequest__Output, _cah_v1_ClaimKeysResponse>;
  
  /**
   * All samples of the shard were sent; the coordinator writes the output shard, then marks it done.
   */
  CompleteShard: grpc.handleUnaryCall<_cah_v1_CompleteShardRequest__Output, _cah_v1_CompleteShardResponse>;
  
  /**
   * The shard cannot be processed (unreadable source, ...); counts as one attempt.
   */
  FailShard: grpc.handleUnaryCall<_cah_v1_FailShardRequest__Output, _cah_v1_FailShardResponse>;
  
  /**
   * Liveness plus progress; renews the leases the actor holds.
   */
  Heartbeat: grpc.handleUnaryCall<_cah_v1_HeartbeatRequest__Output, _cah_v1_HeartbeatResponse>;
  
  /**
   * Ask for a shard (task). No shard available: has_shard = false and retry_after_ms.
   */
  LeaseShard: grpc.handleUnaryCall<_cah_v1_LeaseShardRequest__Output, _cah_v1_LeaseShardResponse>;
  
  /**
   * A worker announces itself; the answer names its actor id and the extraction/download settings.
   */
  Register: grpc.handleUnaryCall<_cah_v1_RegisterRequest__Output, _cah_v1_RegisterResponse>;
  
  /**
   * Samples flow up; credits flow down. The worker may send one sample per credit it holds.
   * The coordinator grants credits as its filter queue drains (backpressure). Workers send them on
   * the bulk sample stream (src/wire/bulk.ts), which reuses these messages; this call is refused
   * (UNIMPLEMENTED).
   */
  StreamSamples: grpc.handleBidiStreamingCall<_cah_v1_SampleMessage__Output, _cah_v1_CreditGrant>;
  
}

export interface CoordinatorDefinition extends grpc.ServiceDefinition {
  ClaimKeys: MethodDefinition<_cah_v1_ClaimKeysRequest, _cah_v1_ClaimKeysResponse, _cah_v1_ClaimKeysRequest__Output, _cah_v1_ClaimKeysResponse__Output>
  CompleteShard: MethodDefinition<_cah_v1_CompleteShardRequest, _cah_v1_CompleteShardResponse, _cah_v1_CompleteShardRequest__Output, _cah_v1_CompleteShardResponse__Output>
  FailShard: MethodDefinition<_cah_v1_FailShardRequest, _cah_v1_FailShardResponse, _cah_v1_FailShardRequest__Output, _cah_v1_FailShardResponse__Output>
  Heartbeat: MethodDefinition<_cah_v1_HeartbeatRequest, _cah_v1_HeartbeatResponse, _cah_v1_HeartbeatRequest__Output, _cah_v1_HeartbeatResponse__Output>
  LeaseShard: MethodDefinition<_cah_v1_LeaseShardRequest, _cah_v1_LeaseShardResponse, _cah_v1_LeaseShardRequest__Output, _cah_v1_LeaseShardResponse__Output>
  Register: MethodDefinition<_cah_v1_RegisterRequest, _cah_v1_RegisterResponse, _cah_v1_RegisterRequest__Output, _cah_v1_RegisterResponse__Output>
  StreamSamples: MethodDefinition<_cah_v1_SampleMessage, _cah_v1_CreditGrant, _cah_v1_SampleMessage__Output, _cah_v1_CreditGrant__Output>
}
