// Original file: proto/cah.proto

import type { ShardProgress as _cah_v1_ShardProgress, ShardProgress__Output as _cah_v1_ShardProgress__Output } from '../../cah/v1/ShardProgress.js';

export interface HeartbeatRequest {
  'actorId'?: (string);
  'shards'?: (_cah_v1_ShardProgress)[];
}

export interface HeartbeatRequest__Output {
  'actorId': (string);
  'shards': (_cah_v1_ShardProgress__Output)[];
}
