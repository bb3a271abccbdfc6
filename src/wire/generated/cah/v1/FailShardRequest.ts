// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface FailShardRequest {
  'actorId'?: (string);
  'shardId'?: (number | string | Long);
  'fencingToken'?: (number | string | Long);
  'error'?: (string);
}

export interface FailShardRequest__Output {
  'actorId': (string);
  'shardId': (number);
  'fencingToken': (number);
  'error': (string);
}
