import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ClaimKeysRequest as _cah_v1_ClaimKeysRequest, ClaimKeysRequest__Output as _cah_v1_ClaimKeysRequest__Output } from './cah/v1/ClaimKeysRequest.js';
import type { ClaimKeysResponse as _cah_v1_ClaimKeysResponse, ClaimKeysResponse__Output as _cah_v1_ClaimKeysResponse__Output } from './cah/v1/ClaimKeysResponse.js';
import type { CompleteShardRequest as _cah_v1_CompleteShardRequest, CompleteShardRequest__Output as _cah_v1_CompleteShardRequest__Output } from './cah/v1/CompleteShardRequest.js';
import type { CompleteShardResponse as _cah_v1_CompleteShardResponse, CompleteShardResponse__Output as _cah_v1_CompleteShardResponse__Output } from './cah/v1/CompleteShardResponse.js';
import type { CoordinatorClient as _cah_v1_CoordinatorClient, CoordinatorDefinition as _cah_v1_CoordinatorDefinition } from './cah/v1/Coordinator.js';
import type { CreditGrant as _cah_v1_CreditGrant, CreditGrant__Output as _cah_v1_CreditGrant__Output } from './cah/v1/CreditGrant.js';
import type { ExtractionCounts as _cah_v1_ExtractionCounts, ExtractionCounts__Output as _cah_v1_ExtractionCounts__Output } from './cah/v1/ExtractionCounts.js';
import type { FailShardRequest as _cah_v1_FailShardRequest, FailShardRequest__Output as _cah_v1_FailShardRequest__Output } from './cah/v1/FailShardRequest.js';
import type { FailShardResponse as _cah_v1_FailShardResponse, FailShardResponse__Output as _cah_v1_FailShardResponse__Output } from './cah/v1/FailShardResponse.js';
import type { HeartbeatRequest as _cah_v1_HeartbeatRequest, HeartbeatRequest__Output as _cah_v1_HeartbeatRequest__Output } from './cah/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _cah_v1_HeartbeatResponse, HeartbeatResponse__Output as _cah_v1_HeartbeatResponse__Output } from './cah/v1/HeartbeatResponse.js';
import type { LeaseShardRequest as _cah_v1_LeaseShardRequest, LeaseShardRequest__Output as _cah_v1_LeaseShardRequest__Output } from './cah/v1/LeaseShardRequest.js';
import type { LeaseShardResponse as _cah_v1_LeaseShardResponse, LeaseShardResponse__Output as _cah_v1_LeaseShardResponse__Output } from './cah/v1/LeaseShardResponse.js';
import type { RegisterRequest as _cah_v1_RegisterRequest, RegisterRequest__Output as _cah_v1_RegisterRequest__Output } from './cah/v1/RegisterRequest.js';
import type { RegisterResponse as _cah_v1_RegisterResponse, RegisterResponse__Output as _cah_v1_RegisterResponse__Output } from './cah/v1/RegisterResponse.js';
import type { Sample as _cah_v1_Sample, Sample__Output as _cah_v1_Sample__Output } from './cah/v1/Sample.js';
import type { SampleMessage as _cah_v1_SampleMessage, SampleMessage__Output as _cah_v1_SampleMessage__Output } from './cah/v1/SampleMessage.js';
import type { Shard as _cah_v1_Shard, Shard__Output as _cah_v1_Shard__Output } from './cah/v1/Shard.js';
import type { ShardProgress as _cah_v1_ShardProgress, ShardProgress__Output as _cah_v1_ShardProgress__Output } from './cah/v1/ShardProgress.js';
import type { WorkerSettings as _cah_v1_WorkerSettings, WorkerSettings__Output as _cah_v1_WorkerSettings__Output } from './cah/v1/WorkerSettings.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  cah: {
    v1: {
      ClaimKeysRequest: MessageTypeDefinition<_cah_v1_ClaimKeysRequest, _cah_v1_ClaimKeysRequest__Output>
      ClaimKeysResponse: MessageTypeDefinition<_cah_v1_ClaimKeysResponse, _cah_v1_ClaimKeysResponse__Output>
      CompleteShardRequest: MessageTypeDefinition<_cah_v1_CompleteShardRequest, _cah_v1_CompleteShardRequest__Output>
      CompleteShardResponse: MessageTypeDefinition<_cah_v1_CompleteShardResponse, _cah_v1_CompleteShardResponse__Output>
      Coordinator: SubtypeConstructor<typeof grpc.Client, _cah_v1_CoordinatorClient> & { service: _cah_v1_CoordinatorDefinition }
      CreditGrant: MessageTypeDefinition<_cah_v1_CreditGrant, _cah_v1_CreditGrant__Output>
      ExtractionCounts: MessageTypeDefinition<_cah_v1_ExtractionCounts, _cah_v1_ExtractionCounts__Output>
      FailShardRequest: MessageTypeDefinition<_cah_v1_FailShardRequest, _cah_v1_FailShardRequest__Output>
      FailShardResponse: MessageTypeDefinition<_cah_v1_FailShardResponse, _cah_v1_FailShardResponse__Output>
      HeartbeatRequest: MessageTypeDefinition<_cah_v1_HeartbeatRequest, _cah_v1_HeartbeatRequest__Output>
      HeartbeatResponse: MessageTypeDefinition<_cah_v1_HeartbeatResponse, _cah_v1_HeartbeatResponse__Output>
      LeaseShardRequest: MessageTypeDefinition<_cah_v1_LeaseShardRequest, _cah_v1_LeaseShardRequest__Output>
      LeaseShardResponse: MessageTypeDefinition<_cah_v1_LeaseShardResponse, _cah_v1_LeaseShardResponse__Output>
      RegisterRequest: MessageTypeDefinition<_cah_v1_RegisterRequest, _cah_v1_RegisterRequest__Output>
      RegisterResponse: MessageTypeDefinition<_cah_v1_RegisterResponse, _cah_v1_RegisterResponse__Output>
      Sample: MessageTypeDefinition<_cah_v1_Sample, _cah_v1_Sample__Output>
      SampleMessage: MessageTypeDefinition<_cah_v1_SampleMessage, _cah_v1_SampleMessage__Output>
      Shard: MessageTypeDefinition<_cah_v1_Shard, _cah_v1_Shard__Output>
      ShardProgress: MessageTypeDefinition<_cah_v1_ShardProgress, _cah_v1_ShardProgress__Output>
      WorkerSettings: MessageTypeDefinition<_cah_v1_WorkerSettings, _cah_v1_WorkerSettings__Output>
    }
  }
}

