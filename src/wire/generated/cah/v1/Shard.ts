// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface Shard {
  'shardId'?: (number | string | Long);
  'source'?: (string);
  'fencingToken'?: (number | string | Long);
  'attempt'?: (number);
}

export interface Shard__Output {
  'shardId': (number);
  'source': (string);
  'fencingToken': (number);
  'attempt': (number);
}
