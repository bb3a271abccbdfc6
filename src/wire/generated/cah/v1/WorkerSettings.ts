// Original file: proto/cah.proto

import type { Long } from '@grpc/proto-loader';

export interface WorkerSettings {
  'minCaptionLength'?: (number);
  'maxCaptionLength'?: (number);
  'imageSize'?: (number);
  'resizeMode'?: (string);
  'minImageSize'?: (number);
  'allowLoopback'?: (boolean);
  'maxInFlight'?: (number);
  'maxImageBytes'?: (number | string | Long);
  'heartbeatIntervalMs'?: (number);
  'respectOptOut'?: (boolean);
  'perHostConcurrency'?: (number);
  'perHostRps'?: (number | string);
  'jpegQuality'?: (number);
  'maxPixels'?: (number | string | Long);
  'downloadTimeoutMs'?: (number);
  'connectTimeoutMs'?: (number);
  'maxRedirects'?: (number);
  /**
   * Shard sources on private addresses (RFC 1918, unique-local) are fetched: a private mirror.
   */
  'allowPrivateSources'?: (boolean);
  /**
   * Transient download failures (timeout, reset, 429, 5xx) are tried again up to this many times.
   */
  'urlRetries'?: (number);
  /**
   * Fill the exif column from each image's EXIF (img2dataset's extract_exif).
   */
  'extractExif'?: (boolean);
  /**
   * Per-image decode + resize time limit, whole seconds (a CPU bomb fails that sample).
   */
  'decodeTimeoutS'?: (number);
}

export interface WorkerSettings__Output {
  'minCaptionLength': (number);
  'maxCaptionLength': (number);
  'imageSize': (number);
  'resizeMode': (string);
  'minImageSize': (number);
  'allowLoopback': (boolean);
  'maxInFlight': (number);
  'maxImageBytes': (number);
  'heartbeatIntervalMs': (number);
  'respectOptOut': (boolean);
  'perHostConcurrency': (number);
  'perHostRps': (number);
  'jpegQuality': (number);
  'maxPixels': (number);
  'downloadTimeoutMs': (number);
  'connectTimeoutMs': (number);
  'maxRedirects': (number);
  /**
   * Shard sources on private addresses (RFC 1918, unique-local) are fetched: a private mirror.
   */
  'allowPrivateSources': (boolean);
  /**
   * Transient download failures (timeout, reset, 429, 5xx) are tried again up to this many times.
   */
  'urlRetries': (number);
  /**
   * Fill the exif column from each image's EXIF (img2dataset's extract_exif).
   */
  'extractExif': (boolean);
  /**
   * Per-image decode + resize time limit, whole seconds (a CPU bomb fails that sample).
   */
  'decodeTimeoutS': (number);
}
