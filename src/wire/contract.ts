import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * TypeScript shapes of proto/cah.proto as @grpc/proto-loader decodes them (longs as numbers,
 * defaults filled in, bytes as Buffer). The .proto file is the contract; these mirror it.
 */
export interface Capabilities {
  maxInFlight: number;
  cpus: number;
  memoryBytes: number;
}
export interface RegisterRequest {
  version: string;
  host: string;
  pid: number;
  capabilities: Capabilities;
  actorId: string;
}
export interface WorkerSettings {
  minCaptionLength: number;
  maxCaptionLength: number;
  imageSize: number;
  resizeMode: string;
  minImageSize: number;
  allowLoopback: boolean;
  maxInFlight: number;
  maxImageBytes: number;
  heartbeatIntervalMs: number;
  respectOptOut: boolean;
  perHostConcurrency: number;
  perHostRps: number;
  jpegQuality: number;
  maxPixels: number;
  downloadTimeoutMs: number;
  connectTimeoutMs: number;
  maxRedirects: number;
  allowPrivateSources: boolean;
  urlRetries: number;
}
export interface RegisterResponse {
  actorId: string;
  settings: WorkerSettings;
}
export interface LeaseShardRequest {
  actorId: string;
}
export interface WireShard {
  shardId: number;
  source: string;
  fencingToken: number;
  leaseExpiresAtMs: number;
  attempt: number;
}
export interface LeaseShardResponse {
  hasShard: boolean;
  shard: WireShard | null;
  retryAfterMs: number;
  drained: boolean;
}
export interface ShardProgress {
  shardId: number;
  fencingToken: number;
  candidates: number;
  downloaded: number;
  failed: number;
  bytesIn: number;
  // Optional for senders (older workers leave them out); decoded messages carry 0 then.
  duplicates?: number;
  sourceBytesRead?: number;
  sourceBytesTotal?: number;
}
export interface HeartbeatRequest {
  actorId: string;
  shards: ShardProgress[];
  inFlight: number;
}
export interface HeartbeatResponse {
  revokedShardIds: number[];
  drain: boolean;
}
export interface ClaimKeysRequest {
  actorId: string;
  shardId: number;
  fencingToken: number;
  keys: string[];
}
export interface ClaimKeysResponse {
  newKeys: string[];
}
export interface WireSample {
  key: string;
  url: string;
  caption: string;
  pageUrl: string;
  license: string;
  status: string;
  errorMessage: string;
  width: number;
  height: number;
  originalWidth: number;
  originalHeight: number;
  sha256: string;
  jpeg: Buffer;
  downloadMs: number;
  resizeMs: number;
  /** Absent from older workers; proto3 reads it as 0 then. */
  downloadAttempts?: number;
}
export interface SampleMessage {
  actorId: string;
  shardId: number;
  fencingToken: number;
  samples: WireSample[];
}
export interface CreditGrant {
  credits: number;
}
export interface ExtractionCountsMessage {
  records: number;
  pages: number;
  candidates: number;
  duplicates: number;
  captionTooShort: number;
  malformedRecords: number;
  captionTruncated: number;
  nonHttpUrls: number;
}
export interface CompleteShardRequest {
  actorId: string;
  shardId: number;
  fencingToken: number;
  samplesSent: number;
  extraction: ExtractionCountsMessage | null;
  sourceErrors: string[];
}
export interface CompleteShardResponse {
  kept: number;
  outputShard: string;
}
export interface FailShardRequest {
  actorId: string;
  shardId: number;
  fencingToken: number;
  error: string;
}
export interface FailShardResponse {
  willRetry: boolean;
}

/** The metadata key every call carries the worker token in. */
export const TOKEN_METADATA_KEY = 'x-cah-token';
/** A secret each worker process picks and sends on every call: its actor id is bound to it at Register. */
export const SESSION_METADATA_KEY = 'x-cah-session';

/** Sample messages can carry images up to the worker's size cap plus metadata. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function findProto(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto', 'cah.proto');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('proto/cah.proto not found next to the cah package');
    dir = parent;
  }
}

let cached: grpc.GrpcObject | undefined;

function loadPackage(): grpc.GrpcObject {
  if (!cached) {
    const definition = protoLoader.loadSync(findProto(), {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      arrays: true,
      oneofs: true,
    });
    cached = grpc.loadPackageDefinition(definition);
  }
  return cached;
}

export type CoordinatorClientConstructor = grpc.ServiceClientConstructor;

/** The `cah.v1.Coordinator` service: its definition for the server and its client constructor. */
export function coordinatorService(): CoordinatorClientConstructor {
  const v1 = (loadPackage()['cah'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
  return v1['Coordinator'] as grpc.ServiceClientConstructor;
}
