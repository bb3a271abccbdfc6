import * as grpc from '@grpc/grpc-js';
import type { FilterStage } from '../filter/stage.js';
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
 * therefore slows the swarm instead of filling the coordinator's memory.
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
      owed = 0;
    } else {
      retryTimer ??= setTimeout(() => {
        retryTimer = null;
        if (owed > 0 && !ended) {
          stream.write({ credits: owed });
          owed = 0;
        }
      }, CREDIT_RETRY_MS);
    }
  };

  const fail = (err: Error): void => {
    if (ended) return;
    ended = true;
    opts.onError(err);
    stream.emit('error', { code: err instanceof StaleLeaseError ? grpc.status.FAILED_PRECONDITION : grpc.status.INTERNAL, details: err.message });
  };

  stream.on('data', (message: SampleMessage) => {
    if (ended) return;
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
