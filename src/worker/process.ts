import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { SampleRecord } from '../output/sample.js';
import type { Candidate } from '../warc/candidate.js';
import type { ImageFetcher } from './fetcher.js';
import { interleaveByHost } from './politeness.js';
import { resizeImage, type ResizeOptions } from './resize.js';

/** Candidates are interleaved by host within windows of this size (bounded memory). */
const WINDOW = 2048;

/**
 * Every candidate becomes exactly one SampleRecord (success with the resized JPEG, or a failure
 * with its message). Up to `maxInFlight` downloads run at once, resizes are bounded by the cores;
 * candidates are read lazily and nothing new starts while the consumer is not pulling.
 */
export async function* processCandidates(
  candidates: AsyncIterable<Candidate> | Iterable<Candidate>,
  fetcher: ImageFetcher,
  resize: ResizeOptions,
  opts: { signal?: AbortSignal; maxInFlight?: number; resizeConcurrency?: number } = {},
): AsyncGenerator<SampleRecord> {
  const maxInFlight = Math.max(1, opts.maxInFlight ?? 256);
  const resizeSlots = new Slots(opts.resizeConcurrency ?? Math.max(1, availableParallelism()));
  const source = windowed(candidates);
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
  const fill = async (): Promise<void> => {
    while (!exhausted && running < maxInFlight && !opts.signal?.aborted) {
      const next = await source.next();
      if (next.done) {
        exhausted = true;
        return;
      }
      running++;
      handle(next.value, fetcher, resize, resizeSlots, opts.signal).then(
        (sample) => {
          finished.push(sample);
          settle();
        },
        (err: unknown) => {
          failure ??= err;
          settle();
        },
      );
    }
  };
  await fill();
  while (running > 0 || finished.length > 0) {
    if (finished.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    if (failure) throw failure;
    while (finished.length > 0) {
      yield finished.shift()!;
      await fill();
    }
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

async function handle(c: Candidate, fetcher: ImageFetcher, resize: ResizeOptions, slots: Slots, signal?: AbortSignal): Promise<SampleRecord> {
  const base: SampleRecord = {
    key: c.key,
    url: c.url,
    caption: c.caption,
    pageUrl: c.pageUrl,
    license: c.license,
    status: 'failed_to_download',
    errorMessage: null,
    width: null,
    height: null,
    originalWidth: null,
    originalHeight: null,
    sha256: null,
    similarity: null,
    jpeg: null,
    downloadMs: null,
    resizeMs: null,
  };
  const fetched = await fetcher.fetch(c.url, signal);
  base.downloadMs = fetched.ms;
  if (!fetched.ok) return { ...base, errorMessage: fetched.error };
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
