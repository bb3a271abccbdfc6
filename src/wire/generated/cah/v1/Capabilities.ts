// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface Capabilities {
  'maxInFlight'?: (number);
  'cpus'?: (number);
  'memoryBytes'?: (number | string | Long);
}

export interface Capabilities__Output {
  'maxInFlight': (number);
  'cpus': (number);
  'memoryBytes': (number);
}
