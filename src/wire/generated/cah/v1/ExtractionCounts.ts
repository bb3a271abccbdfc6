// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface ExtractionCounts {
  'records'?: (number | string | Long);
  'pages'?: (number | string | Long);
  'candidates'?: (number | string | Long);
  'duplicates'?: (number | string | Long);
  'captionTooShort'?: (number | string | Long);
  'malformedRecords'?: (number | string | Long);
  'captionTruncated'?: (number | string | Long);
  'nonHttpUrls'?: (number | string | Long);
}

export interface ExtractionCounts__Output {
  'records': (number);
  'pages': (number);
  'candidates': (number);
  'duplicates': (number);
  'captionTooShort': (number);
  'malformedRecords': (number);
  'captionTruncated': (number);
  'nonHttpUrls': (number);
}
