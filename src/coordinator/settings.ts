import { DEFAULT_DECODE_TIMEOUT_SECONDS } from '../filter/image-format.js';
import type { WorkerSettings } from '../wire/contract.js';

/** How the head schedules, supervises and filters; most fields have a flag on `cah gpu` (the credit window and budget and the completion timeout are tuned here). */
export interface CoordinatorSettings {
  /** Lease length; heartbeats renew it. */
  leaseMs: number;
  /** An ALIVE actor silent this long is declared DEAD (cause: missed heartbeats). */
  heartbeatTimeoutMs: number;
  /** A shard failing this many times is marked failed with its last error. */
  maxRetries: number;
  /** The most credits one sample stream holds; one comes back per sample the filter has finished. */
  creditWindow: number;
  /** The most samples in flight across the whole swarm: each stream's share is this over the open streams (src/coordinator/sample-stream.ts). */
  creditBudget: number;
  /** The most image bytes received and not yet filtered and written across the swarm: past it, streams stop reading. */
  creditBytes: number;
  /** How long CompleteShard waits for the last samples of a shard to be filtered and written. */
  completeTimeoutMs: number;
  /** A lease older than this comes back even while heartbeats renew it (a worker that never finishes). */
  maxLeaseAgeMs: number;
  /** A failed attempt's shard waits this long before its next lease, doubling per failure (at most 60 s). */
  retryBackoffMs: number;
  worker: WorkerSettings;
}

export const DEFAULT_WORKER_SETTINGS: WorkerSettings = {
  minCaptionLength: 5,
  maxCaptionLength: 2000,
  imageSize: 256,
  resizeMode: 'border',
  minImageSize: 0,
  allowLoopback: false,
  maxInFlight: 256,
  maxImageBytes: 10 * 1024 * 1024,
  heartbeatIntervalMs: 2000,
  respectOptOut: true,
  perHostConcurrency: 4,
  perHostRps: 5,
  jpegQuality: 95,
  maxPixels: 89_478_484,
  downloadTimeoutMs: 20_000,
  connectTimeoutMs: 10_000,
  maxRedirects: 5,
  allowPrivateSources: false,
  urlRetries: 2,
  extractExif: false,
  decodeTimeoutS: DEFAULT_DECODE_TIMEOUT_SECONDS,
};

export const DEFAULT_COORDINATOR_SETTINGS: CoordinatorSettings = {
  leaseMs: 5 * 60_000,
  heartbeatTimeoutMs: 30_000,
  maxRetries: 3,
  creditWindow: 512,
  creditBudget: 1024,
  creditBytes: 256 * 1024 * 1024,
  completeTimeoutMs: 120_000,
  maxLeaseAgeMs: 6 * 3600_000,
  retryBackoffMs: 2000,
  worker: DEFAULT_WORKER_SETTINGS,
};
