// Original file: proto/cah.proto


export interface FailShardResponse {
  /**
   * True when the shard will be retried (attempts < max retries).
   */
  'willRetry'?: (boolean);
}

export interface FailShardResponse__Output {
  /**
   * True when the shard will be retried (attempts < max retries).
   */
  'willRetry': (boolean);
}
