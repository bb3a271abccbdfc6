import * as grpc from '@grpc/grpc-js';

/**
 * Why the coordinator refused a call, declared in the wire contract so that a worker branches on a
 * value, not on the wording of a message. It travels as trailing metadata beside the gRPC status:
 *
 *   FAILED_PRECONDITION + register-again  the actor is not ALIVE (declared dead, or the coordinator
 *                                         restarted): drop the shard and register again
 *   FAILED_PRECONDITION + stale-lease     this lease is no longer the actor's: abandon the shard,
 *                                         keep the registration
 *
 * A refusal without the key is read as stale-lease: the narrower consequence.
 */
export const REASON_METADATA_KEY = 'cah-reason';

export const REFUSAL_REASONS = ['register-again', 'stale-lease'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The trailing metadata that carries `reason`. */
export function reasonMetadata(reason: RefusalReason): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(REASON_METADATA_KEY, reason);
  return metadata;
}

/** The declared reason of a failed call (a grpc-js ServiceError), or null when none was sent. */
export function refusalReason(err: unknown): RefusalReason | null {
  const metadata = (err as { metadata?: unknown } | null)?.metadata;
  if (!(metadata instanceof grpc.Metadata)) return null;
  const value = metadata.get(REASON_METADATA_KEY)[0];
  return REFUSAL_REASONS.find((r) => r === value) ?? null;
}
