// Original file: proto/cah.proto


export interface LeaseShardRequest {
  'actorId'?: (string);
}

export interface LeaseShardRequest__Output {
  'actorId': (string);
}
