// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface ClaimKeysRequest {
  'actorId'?: (string);
  'shardId'?: (number | string | Long);
  'fencingToken'?: (number | string | Long);
  'keys'?: (string)[];
}

export interface ClaimKeysRequest__Output {
  'actorId': (string);
  'shardId': (number);
  'fencingToken': (number);
  'keys': (string)[];
}
