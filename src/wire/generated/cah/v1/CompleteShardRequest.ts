// Original file: proto/cah.proto

import type { ExtractionCounts as _cah_v1_ExtractionCounts, ExtractionCounts__Output as _cah_v1_ExtractionCounts__Output } from '../../cah/v1/ExtractionCounts.js';
import type { Long } from '@grpc/proto-loader';

export interface CompleteShardRequest {
  'actorId'?: (string);
  'shardId'?: (number | string | Long);
  'fencingToken'?: (number | string | Long);
  /**
   * Number of samples the worker sent for this shard: the coordinator checks it got them all.
   */
  'samplesSent'?: (number | string | Long);
  'extraction'?: (_cah_v1_ExtractionCounts | null);
  'sourceErrors'?: (string)[];
}

export interface CompleteShardRequest__Output {
  'actorId': (string);
  'shardId': (number);
  'fencingToken': (number);
  /**
   * Number of samples the worker sent for this shard: the coordinator checks it got them all.
   */
  'samplesSent': (number);
  'extraction': (_cah_v1_ExtractionCounts__Output | null);
  'sourceErrors': (string)[];
}
