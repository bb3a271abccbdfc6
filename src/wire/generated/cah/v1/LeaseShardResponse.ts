// Original file: proto/cah.proto

import type { Shard as _cah_v1_Shard, Shard__Output as _cah_v1_Shard__Output } from '../../cah/v1/Shard.js';

export interface LeaseShardResponse {
  'hasShard'?: (boolean);
  'shard'?: (_cah_v1_Shard | null);
  'retryAfterMs'?: (number);
  /**
   * True when no shard is queued or leased any more: the worker may exit when run in batch mode.
   */
  'drained'?: (boolean);
}

export interface LeaseShardResponse__Output {
  'hasShard': (boolean);
  'shard': (_cah_v1_Shard__Output | null);
  'retryAfterMs': (number);
  /**
   * True when no shard is queued or leased any more: the worker may exit when run in batch mode.
   */
  'drained': (boolean);
}
