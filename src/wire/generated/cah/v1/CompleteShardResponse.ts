// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface CompleteShardResponse {
  'kept'?: (number | string | Long);
  'outputShard'?: (string);
}

export interface CompleteShardResponse__Output {
  'kept': (number);
  'outputShard': (string);
}
