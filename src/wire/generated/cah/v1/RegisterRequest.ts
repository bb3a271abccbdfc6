// Original file: proto/cah.proto


export interface RegisterRequest {
  'version'?: (string);
  'host'?: (string);
  'pid'?: (number);
  /**
   * Set by workers the coordinator started itself (local or swarm), to join their actor record.
   */
  'actorId'?: (string);
}

export interface RegisterRequest__Output {
  'version': (string);
  'host': (string);
  'pid': (number);
  /**
   * Set by workers the coordinator started itself (local or swarm), to join their actor record.
   */
  'actorId': (string);
}
