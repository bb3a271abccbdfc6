// Original file: proto/cah.proto


export interface ClaimKeysResponse {
  'newKeys'?: (string)[];
}

export interface ClaimKeysResponse__Output {
  'newKeys': (string)[];
}
