import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from './generated/cah.js';

/**
 * The messages of proto/cah.proto as @grpc/proto-loader decodes them with LOADER_OPTIONS (longs
 * as numbers, defaults filled in, absent sub-messages as null, bytes as Buffer). The types are
 * generated from the .proto (`npm run gen:wire`, checked by tests/wire-types.test.ts), so they
 * cannot drift from it; senders build the same complete shapes.
 */
type Messages = ProtoGrpcType['cah']['v1'];
type Decoded<Name extends keyof Messages> = Messages[Name] extends MessageTypeDefinition<object, infer Output> ? Output : never;

export type RegisterRequest = Decoded<'RegisterRequest'>;
export type WorkerSettings = Decoded<'WorkerSettings'>;
export type RegisterResponse = Decoded<'RegisterResponse'>;
export type LeaseShardRequest = Decoded<'LeaseShardRequest'>;
export type WireShard = Decoded<'Shard'>;
export type LeaseShardResponse = Decoded<'LeaseShardResponse'>;
export type ShardProgress = Decoded<'ShardProgress'>;
export type HeartbeatRequest = Decoded<'HeartbeatRequest'>;
export type HeartbeatResponse = Decoded<'HeartbeatResponse'>;
export type ClaimKeysRequest = Decoded<'ClaimKeysRequest'>;
export type ClaimKeysResponse = Decoded<'ClaimKeysResponse'>;
export type WireSample = Decoded<'Sample'>;
export type SampleMessage = Decoded<'SampleMessage'>;
export type CreditGrant = Decoded<'CreditGrant'>;
export type ExtractionCountsMessage = Decoded<'ExtractionCounts'>;
export type CompleteShardRequest = Decoded<'CompleteShardRequest'>;
export type CompleteShardResponse = Decoded<'CompleteShardResponse'>;
export type FailShardRequest = Decoded<'FailShardRequest'>;
export type FailShardResponse = Decoded<'FailShardResponse'>;

/** How the runtime loads the proto; the generated types are made with the same options. */
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
} as const satisfies protoLoader.Options;

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
    const definition = protoLoader.loadSync(findProto(), LOADER_OPTIONS);
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
