import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { newSample, type SampleRecord } from '../output/sample.js';
import type { Candidate } from '../warc/candidate.js';
import type { ImageFetcher } from './fetcher.js';
import { interleaveByHost } from './politeness.js';
import { resizeImage, type ResizeOptions } from './resize.js';

/** Candidates are interleaved by host within windows of this size (bounded memory). */
const WINDOW = 2048;
/** Backoff before the first retry of a transient failure when the server names none; doubles per retry. */
const RETRY_BASE_MS = 1000;
/** No retry waits longer than this, whatever Retry-After says: the shard's lease must not idle away. */
const MAX_RETRY_DELAY_MS = 60_000;

/** A candidate waiting to be downloaded again, not before `at`. */
interface PendingRetry {
  candidate: Candidate;
  attempts: number;
  at: number;
}

/** How long to wait before retry number `attempts` (1-based count of tries so far). */
export function retryDelayMs(attempts: number, retryAfterMs: number | undefined): number {
  return Math.min(MAX_RETRY_DELAY_MS, retryAfterMs ?? RETRY_BASE_MS * 2 ** (attempts - 1));
}

/**
 * Every candidate becomes exactly one SampleRecord (success with the resized JPEG, or a failure
 * with its message). Up to `maxInFlight` downloads run at once, resizes are bounded by the cores;
 * candidates are read lazily and nothing new starts while the consumer is not pulling. A transient
 * download failure (timeout, reset, 429, 5xx) is tried again later, up to `urlRetries` times, after
 * a per-host backoff that honours Retry-After; other candidates go on meanwhile.
 */
export async function* processCandidates(
  candidates: AsyncIterable<Candidate> | Iterable<Candidate>,
  fetcher: ImageFetcher,
  resize: ResizeOptions,
  opts: { signal?: AbortSignal; maxInFlight?: number; resizeConcurrency?: number; urlRetries?: number } = {},
): AsyncGenerator<SampleRecord> {
  const maxInFlight = Math.max(1, opts.maxInFlight ?? 256);
  const resizeSlots = new Slots(opts.resizeConcurrency ?? Math.max(1, availableParallelism()));
  const source = windowed(candidates);
  const urlRetries = opts.urlRetries ?? 0;
  const retries: PendingRetry[] = [];
  let retryTimer: NodeJS.Timeout | null = null;
  // Finished samples queue up here in completion order. (Promise.race over every running download
  // would attach a handler to each of them per sample: quadratic with hundreds in flight.)
  const finished: SampleRecord[] = [];
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  let running = 0;
  let exhausted = false;
  const settle = (): void => {
    running--;
    wake?.();
    wake = null;
  };
  /** `attempts`: downloads of this candidate tried so far. */
  const start = (candidate: Candidate, attempts: number): void => {
    running++;
    handle(candidate, attempts, urlRetries, fetcher, resize, resizeSlots, opts.signal).then(
      (outcome) => {
        if ('retryInMs' in outcome) {
          retries.push({ candidate, attempts: attempts + 1, at: Date.now() + outcome.retryInMs });
          let host = '';
          try {
            host = new URL(candidate.url).hostname;
          } catch {
            // A URL that failed transiently parsed before; nothing to back off from otherwise.
          }
          if (host) fetcher.backoff(host, outcome.retryInMs);
        } else {
          finished.push(outcome);
        }
        settle();
      },
      (err: unknown) => {
        failure ??= err;
        settle();
      },
    );
  };
  const fill = async (): Promise<void> => {
    while (running < maxInFlight && !opts.signal?.aborted) {
      const due = retries.findIndex((r) => r.at <= Date.now());
      if (due >= 0) {
        const [r] = retries.splice(due, 1);
        start(r!.candidate, r!.attempts);
        continue;
      }
      if (exhausted) break;
      const next = await source.next();
      if (next.done) {
        exhausted = true;
        continue;
      }
      start(next.value, 0);
    }
    // Only retries left and none due: wake when the earliest is.
    if (running === 0 && retries.length > 0 && !retryTimer && !opts.signal?.aborted) {
      const earliest = retries.reduce((min, r) => Math.min(min, r.at), Infinity);
      retryTimer = setTimeout(() => {
        retryTimer = null;
        wake?.();
        wake = null;
      }, Math.max(0, earliest - Date.now()));
    }
  };
  // An abort must not wait for a retry timer.
  const onAbort = (): void => {
    wake?.();
    wake = null;
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  await fill();
  try {
    while (running > 0 || finished.length > 0 || (retries.length > 0 && !opts.signal?.aborted)) {
      if (finished.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      if (failure) throw failure;
      while (finished.length > 0) {
        yield finished.shift()!;
        await fill();
      }
      if (running === 0) await fill();
    }
  } finally {
    if (retryTimer) clearTimeout(retryTimer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

async function* windowed(candidates: AsyncIterable<Candidate> | Iterable<Candidate>): AsyncGenerator<Candidate> {
  let window: Candidate[] = [];
  for await (const c of candidates) {
    window.push(c);
    if (window.length >= WINDOW) {
      yield* interleaveByHost(window);
      window = [];
    }
  }
  yield* interleaveByHost(window);
}

async function handle(
  c: Candidate,
  previousAttempts: number,
  urlRetries: number,
  fetcher: ImageFetcher,
  resize: ResizeOptions,
  slots: Slots,
  signal?: AbortSignal,
): Promise<SampleRecord | { retryInMs: number }> {
  const attempts = previousAttempts + 1;
  const { key, url, caption, pageUrl, license } = c;
  const base = newSample({ key, url, caption, pageUrl, license, status: 'failed_to_download', downloadAttempts: attempts });
  const fetched = await fetcher.fetch(c.url, signal);
  base.downloadMs = fetched.ms;
  if (!fetched.ok) {
    if (fetched.transient && attempts <= urlRetries && !signal?.aborted) return { retryInMs: retryDelayMs(attempts, fetched.retryAfterMs) };
    return { ...base, errorMessage: fetched.error };
  }
  const release = await slots.acquire();
  const started = Date.now();
  try {
    const r = await resizeImage(fetched.bytes, resize);
    base.resizeMs = Date.now() - started;
    if (!r.ok) return { ...base, status: 'failed_to_resize', errorMessage: r.error };
    return {
      ...base,
      status: 'success',
      width: r.width,
      height: r.height,
      originalWidth: r.originalWidth,
      originalHeight: r.originalHeight,
      exif: r.exif,
      jpeg: r.jpeg,
      // As img2dataset's compute_hash: the bytes as downloaded, not the re-encoded JPEG.
      sha256: createHash('sha256').update(fetched.bytes).digest('hex'),
    };
  } finally {
    release();
    fetched.release();
  }
}

class Slots {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    return () => {
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}
