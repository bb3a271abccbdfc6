// Original file: proto/cah.proto


export interface CreditGrant {
  'credits'?: (number);
}

export interface CreditGrant__Output {
  'credits': (number);
}
