import { CahError } from '../errors.js';
import * as grpc from '@grpc/grpc-js';
import type { FilterStage } from '../filter/stage.js';
import { oneLine } from '../text/sanitize.js';
import type { CreditGrant, SampleMessage } from '../wire/contract.js';
import { reasonMetadata } from '../wire/reasons.js';
import { RpcError } from './service.js';
import type { ShardAttempt } from './shard-attempt.js';

/** How often credits are re-offered while the filter queue is full. */
const CREDIT_RETRY_MS = 25;
/** Credits are sent back in small batches rather than one message per sample. */
const CREDIT_BATCH = 8;
/** The smallest share a stream gets, however many streams there are: every worker keeps moving. */
const MIN_SHARE = 8;
/**
 * Bytes (images and text) one stream may have received and not yet filtered and written. Credits count
 * samples, not bytes: past this the stream stops reading, so HTTP/2 flow control holds the worker
 * back whatever the size of what it sends (a broken or hostile worker with 512 credits of 10 MB
 * images would otherwise be read in full).
 */
export const STREAM_BYTES_IN_FLIGHT = 32 * 1024 * 1024;

/**
 * The swarm's credit budget: the most samples in flight (granted, on the wire, or being filtered)
 * across every stream. Each open stream's share is the budget divided among the open streams, at
 * most the per-stream window. Without it 100 workers would hold 100 windows, and the backlog on the
 * coordinator's event loop, and with it every lease and heartbeat's latency, would grow with the
 * swarm instead of staying that of a budget's worth of samples.
 */
export class CreditBudget {
  private open = 0;
  private bytes = 0;
  private waiting = new Set<() => void>();

  constructor(
    private readonly budget: number,
    private readonly window: number,
    /** The same bound across every stream of the swarm (settings.creditBytes). */
    private readonly byteBudget: number,
  ) {}

  /** Counts image bytes received (positive) or filtered and written (negative) across every stream. */
  addBytes(n: number): void {
    this.bytes += n;
    if (n < 0 && !this.bytesFull && this.waiting.size > 0) {
      const waiting = [...this.waiting];
      this.waiting.clear();
      for (const wake of waiting) wake();
    }
  }

  get bytesFull(): boolean {
    return this.bytes >= this.byteBudget;
  }

  /** Calls `wake` once the swarm's bytes in flight are under the budget again. */
  whenBytesFree(wake: () => void): void {
    this.waiting.add(wake);
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }

  join(): void {
    this.open++;
  }

  leave(): void {
    this.open--;
  }

  share(): number {
    return Math.min(this.window, Math.max(MIN_SHARE, Math.floor(this.budget / Math.max(1, this.open))));
  }
}

/**
 * One worker's sample stream for one shard attempt, with credit-based backpressure: the worker may
 * send one sample per credit; it gets its share of the swarm's budget when the attempt starts, and
 * credits come back as samples are filtered and written, while its samples in flight are under its
 * share and the filter queue has room. A slow filter therefore slows the swarm instead of filling
 * the coordinator's memory. The coordinator counts the credits itself: a worker sending more
 * samples than it was granted is refused (RESOURCE_EXHAUSTED).
 */
export function serveSampleStream(
  stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>,
  opts: {
    budget: CreditBudget;
    filter: FilterStage;
    resolveAttempt: (first: SampleMessage) => Promise<ShardAttempt>;
    onError: (err: Error) => void;
  },
): void {
  let attempt: Promise<ShardAttempt> | null = null;
  /** Samples received and not yet filtered and written. */
  let outstanding = 0;
  /** Credits granted that the worker has not used yet. */
  let held = 0;
  let started = false;
  let ended = false;
  let retryTimer: NodeJS.Timeout | null = null;
  /** Image bytes received and not yet filtered and written; past the bounds the stream stops reading. */
  let bytesIn = 0;
  let reading = true;
  // A paused stream still decodes ahead into its buffer up to the high-water mark: 16 messages of up
  // to 64 MiB by default. One is enough here; the bound below does the rest.
  const readable = (stream as unknown as { _readableState?: { highWaterMark?: unknown } })._readableState;
  if (typeof readable?.highWaterMark === 'number') readable.highWaterMark = 1;

  const mayRead = (): boolean => bytesIn <= STREAM_BYTES_IN_FLIGHT && !opts.budget.bytesFull;
  const resumeReading = (): void => {
    if (reading || ended) return;
    if (!mayRead()) {
      if (opts.budget.bytesFull) opts.budget.whenBytesFree(resumeReading);
      return;
    }
    reading = true;
    stream.resume();
  };
  const holdBytes = (n: number): void => {
    bytesIn += n;
    opts.budget.addBytes(n);
    if (!reading || mayRead()) return;
    reading = false;
    stream.pause();
    if (opts.budget.bytesFull) opts.budget.whenBytesFree(resumeReading);
  };
  const releaseBytes = (n: number): void => {
    // Also after the stream's end: its samples stay in memory until filtered and written.
    bytesIn -= n;
    opts.budget.addBytes(-n);
    resumeReading();
  };

  const send = (credits: number): void => {
    stream.write({ credits });
    held += credits;
  };
  const later = (): void => {
    retryTimer ??= setTimeout(() => {
      retryTimer = null;
      grant(true);
    }, CREDIT_RETRY_MS);
  };
  const grant = (flush = false): void => {
    if (ended || !started) return;
    const room = opts.budget.share() - held - outstanding;
    if (room <= 0) return;
    if (opts.filter.queueDepth >= opts.filter.capacity) return later();
    if (flush || room >= CREDIT_BATCH || outstanding === 0) send(room);
    else later();
  };
  const finish = (): void => {
    if (ended) return;
    ended = true;
    // Only a stream whose attempt opened counts against the budget: an idle or refused one never did.
    if (started) opts.budget.leave();
    if (retryTimer) clearTimeout(retryTimer);
    opts.budget.forget(resumeReading);
  };

  const fail = (err: Error): void => {
    if (ended) return;
    finish();
    opts.onError(err);
    // A refusal keeps its status and declared reason, so the worker knows to register again or drop the shard.
    if (err instanceof RpcError) {
      stream.emit('error', { code: err.status, details: err.message, ...(err.reason ? { metadata: reasonMetadata(err.reason) } : {}) });
      return;
    }
    if (err instanceof StaleLeaseError) {
      stream.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: err.message, metadata: reasonMetadata('stale-lease') });
      return;
    }
    const code = err instanceof CreditOverrunError ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INTERNAL;
    stream.emit('error', { code, details: err.message });
  };

  stream.on('data', (message: SampleMessage) => {
    if (ended) return;
    held -= message.samples.length;
    if (held < 0) {
      fail(new CreditOverrunError(`worker ${oneLine(message.actorId).slice(0, 64)} sent ${-held} sample(s) beyond its credits`));
      return;
    }
    if (!attempt) {
      attempt = opts.resolveAttempt(message);
      attempt.then(
        () => {
          if (ended) return;
          started = true;
          opts.budget.join();
          grant(true);
        },
        (err: Error) => fail(err),
      );
    }
    holdBytes(message.samples.reduce((n, sample) => n + sampleBytes(sample), 0));
    for (const sample of message.samples) {
      outstanding++;
      const bytes = sampleBytes(sample);
      attempt
        .then((a) => a.accept(sample))
        .then(
          () => {
            outstanding--;
            releaseBytes(bytes);
            grant();
          },
          () => releaseBytes(bytes),
        );
    }
  });
  stream.on('end', () => {
    if (ended) return;
    // A stream that ends before its lease was checked ends with the check's answer, not OK.
    const settled = attempt ?? Promise.resolve(null);
    settled.then(
      () => {
        if (ended) return;
        finish();
        stream.end();
      },
      () => undefined,
    );
  });
  stream.on('error', finish);
  stream.on('cancelled', finish);
}

/**
 * What a sample holds in the coordinator's memory until it is filtered and written: its image and
 * its text fields (a caption can be as large as an image; counting only images let 512 credits of
 * 1 MiB captions past the byte bound).
 */
function sampleBytes(sample: SampleMessage['samples'][number]): number {
  return sample.jpeg.length + sample.key.length + sample.url.length + sample.caption.length + sample.pageUrl.length + sample.license.length + sample.errorMessage.length + sample.exif.length + sample.sha256.length + sample.status.length;
}

/** A stream's samples name a lease that is no longer current (FAILED_PRECONDITION to the worker). */
export class StaleLeaseError extends CahError {
  constructor(message: string) {
    super('CAH_STALE_LEASE', message);
  }
}

/** A worker sent more samples than it was granted credits (RESOURCE_EXHAUSTED to the worker). */
export class CreditOverrunError extends CahError {
  constructor(message: string) {
    super('CAH_CREDIT_OVERRUN', message);
  }
}
