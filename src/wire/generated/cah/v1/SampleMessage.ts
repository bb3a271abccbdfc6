// Original file: proto/cah.proto

import type { Sample as _cah_v1_Sample, Sample__Output as _cah_v1_Sample__Output } from '../../cah/v1/Sample.js';
import type { Long } from '@grpc/proto-loader';

export interface SampleMessage {
  /**
   * The first message of a stream only names the actor; later ones carry samples.
   */
  'actorId'?: (string);
  'shardId'?: (number | string | Long);
  'fencingToken'?: (number | string | Long);
  'samples'?: (_cah_v1_Sample)[];
}

export interface SampleMessage__Output {
  /**
   * The first message of a stream only names the actor; later ones carry samples.
   */
  'actorId': (string);
  'shardId': (number);
  'fencingToken': (number);
  'samples': (_cah_v1_Sample__Output)[];
}
