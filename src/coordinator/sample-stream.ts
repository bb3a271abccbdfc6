import * as grpc from '@grpc/grpc-js';
import type { FilterStage } from '../filter/stage.js';
import { oneLine } from '../text/sanitize.js';
import type { CreditGrant, SampleMessage } from '../wire/contract.js';
import type { ShardAttempt } from './shard-attempt.js';

/** How often owed credits are re-offered while the filter queue is full. */
const CREDIT_RETRY_MS = 25;
/** Credits are sent back in small batches rather than one message per sample. */
const CREDIT_BATCH = 8;

/**
 * One worker's sample stream for one shard attempt, with credit-based backpressure: the worker
 * starts with `window` credits and may send one sample per credit; a credit comes back when the
 * sample has been filtered and written, and only while the filter queue has room. A slow filter
 * therefore slows the swarm instead of filling the coordinator's memory. The coordinator counts the
 * credits itself: a worker sending more samples than it was granted is refused (RESOURCE_EXHAUSTED).
 */
export function serveSampleStream(
  stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>,
  opts: {
    window: number;
    filter: FilterStage;
    resolveAttempt: (first: SampleMessage) => Promise<ShardAttempt>;
    onError: (err: Error) => void;
  },
): void {
  let attempt: Promise<ShardAttempt> | null = null;
  let owed = 0;
  let outstanding = 0;
  /** Samples the worker may still send: the window, plus every credit granted, minus what arrived. */
  let allowance = opts.window;
  let ended = false;
  let retryTimer: NodeJS.Timeout | null = null;

  const grant = (): void => {
    if (ended || owed === 0) return;
    if (opts.filter.queueDepth >= opts.filter.capacity) {
      retryTimer ??= setTimeout(() => {
        retryTimer = null;
        grant();
      }, CREDIT_RETRY_MS);
      return;
    }
    if (owed >= CREDIT_BATCH || outstanding === 0) {
      stream.write({ credits: owed });
      allowance += owed;
      owed = 0;
    } else {
      retryTimer ??= setTimeout(() => {
        retryTimer = null;
        if (owed > 0 && !ended) {
          stream.write({ credits: owed });
          allowance += owed;
          owed = 0;
        }
      }, CREDIT_RETRY_MS);
    }
  };

  const fail = (err: Error): void => {
    if (ended) return;
    ended = true;
    opts.onError(err);
    const code = err instanceof StaleLeaseError ? grpc.status.FAILED_PRECONDITION : err instanceof CreditOverrunError ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INTERNAL;
    stream.emit('error', { code, details: err.message });
  };

  stream.on('data', (message: SampleMessage) => {
    if (ended) return;
    allowance -= message.samples.length;
    if (allowance < 0) {
      fail(new CreditOverrunError(`worker ${oneLine(message.actorId).slice(0, 64)} sent ${-allowance} sample(s) beyond its credits`));
      return;
    }
    if (!attempt) {
      attempt = opts.resolveAttempt(message);
      attempt.then(
        () => stream.write({ credits: opts.window }),
        (err: Error) => fail(err),
      );
    }
    for (const sample of message.samples) {
      outstanding++;
      attempt
        .then((a) => a.accept(sample))
        .then(
          () => {
            outstanding--;
            owed++;
            grant();
          },
          () => undefined,
        );
    }
  });
  stream.on('end', () => {
    if (retryTimer) clearTimeout(retryTimer);
    if (!ended) {
      ended = true;
      stream.end();
    }
  });
  stream.on('error', () => {
    ended = true;
    if (retryTimer) clearTimeout(retryTimer);
  });
  stream.on('cancelled', () => {
    ended = true;
    if (retryTimer) clearTimeout(retryTimer);
  });
}

export class StaleLeaseError extends Error {}
export class CreditOverrunError extends Error {}
