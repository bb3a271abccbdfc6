import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from './generated/cah.js';
import type { CoordinatorHandlers } from './generated/cah/v1/Coordinator.js';

/**
 * The messages of proto/cah.proto as @grpc/proto-loader decodes them with LOADER_OPTIONS (longs
 * as numbers, defaults filled in, absent sub-messages as null, bytes as Buffer). The types are
 * generated from the .proto (`npm run gen:wire`, checked by tests/wire-types.test.ts), so they
 * cannot drift from it; senders build the same complete shapes.
 */
type V1 = ProtoGrpcType['cah']['v1'];
type Decoded<Name extends keyof V1> = V1[Name] extends MessageTypeDefinition<object, infer Output> ? Output : never;

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

/** The server side of the service: one handler per rpc, typed by the proto. */
export type CoordinatorServiceImplementation = CoordinatorHandlers;

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

let cached: ProtoGrpcType | undefined;

function loadPackage(): ProtoGrpcType {
  if (!cached) {
    const definition = protoLoader.loadSync(findProto(), LOADER_OPTIONS);
    // The generated ProtoGrpcType describes exactly this package (same proto, same options).
    cached = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return cached;
}

/** The `cah.v1.Coordinator` service: its client constructor, typed by the proto, and its definition for the server. */
export function coordinatorService(): V1['Coordinator'] {
  return loadPackage().cah.v1.Coordinator;
}
