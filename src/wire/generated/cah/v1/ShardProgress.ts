// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface ShardProgress {
  'shardId'?: (number | string | Long);
  'fencingToken'?: (number | string | Long);
  'candidates'?: (number | string | Long);
  'downloaded'?: (number | string | Long);
  'failed'?: (number | string | Long);
  'bytesIn'?: (number | string | Long);
  /**
   * Candidates dropped as run-wide duplicates (not counted in `candidates`).
   */
  'duplicates'?: (number | string | Long);
  /**
   * How far the worker has read the shard's source, in raw (compressed) bytes, and its size when
   * known (0: unknown): the coordinator's progress and ETA within a shard.
   */
  'sourceBytesRead'?: (number | string | Long);
  'sourceBytesTotal'?: (number | string | Long);
}

export interface ShardProgress__Output {
  'shardId': (number);
  'fencingToken': (number);
  'candidates': (number);
  'downloaded': (number);
  'failed': (number);
  'bytesIn': (number);
  /**
   * Candidates dropped as run-wide duplicates (not counted in `candidates`).
   */
  'duplicates': (number);
  /**
   * How far the worker has read the shard's source, in raw (compressed) bytes, and its size when
   * known (0: unknown): the coordinator's progress and ETA within a shard.
   */
  'sourceBytesRead': (number);
  'sourceBytesTotal': (number);
}
