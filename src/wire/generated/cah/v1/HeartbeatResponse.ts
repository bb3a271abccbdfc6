// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface HeartbeatResponse {
  /**
   * Shards whose leases are no longer this actor's: stop working on them.
   */
  'revokedShardIds'?: (number | string | Long)[];
  /**
   * The coordinator asks the actor to finish what it has and take no new shard.
   */
  'drain'?: (boolean);
}

export interface HeartbeatResponse__Output {
  /**
   * Shards whose leases are no longer this actor's: stop working on them.
   */
  'revokedShardIds': (number)[];
  /**
   * The coordinator asks the actor to finish what it has and take no new shard.
   */
  'drain': (boolean);
}
