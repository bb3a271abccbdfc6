// Original file: proto/cah.proto

import type { Capabilities as _cah_v1_Capabilities, Capabilities__Output as _cah_v1_Capabilities__Output } from '../../cah/v1/Capabilities.js';

export interface RegisterRequest {
  'version'?: (string);
  'host'?: (string);
  'pid'?: (number);
  'capabilities'?: (_cah_v1_Capabilities | null);
  /**
   * Set by workers the coordinator started itself (local or swarm), to join their actor record.
   */
  'actorId'?: (string);
}

export interface RegisterRequest__Output {
  'version': (string);
  'host': (string);
  'pid': (number);
  'capabilities': (_cah_v1_Capabilities__Output | null);
  /**
   * Set by workers the coordinator started itself (local or swarm), to join their actor record.
   */
  'actorId': (string);
}
