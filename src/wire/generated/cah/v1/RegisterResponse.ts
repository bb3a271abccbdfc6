// Original file: proto/cah.proto

import type { WorkerSettings as _cah_v1_WorkerSettings, WorkerSettings__Output as _cah_v1_WorkerSettings__Output } from '../../cah/v1/WorkerSettings.js';

export interface RegisterResponse {
  'actorId'?: (string);
  'settings'?: (_cah_v1_WorkerSettings | null);
}

export interface RegisterResponse__Output {
  'actorId': (string);
  'settings': (_cah_v1_WorkerSettings__Output | null);
}
