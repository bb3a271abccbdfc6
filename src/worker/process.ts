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
  const running = new Map<number, Promise<{ id: number; sample: SampleRecord }>>();
  let nextId = 0;
  let exhausted = false;
  const fill = async (): Promise<void> => {
    while (!exhausted && running.size < maxInFlight && !opts.signal?.aborted) {
      const next = await source.next();
      if (next.done) {
        exhausted = true;
        return;
      }
      const id = nextId++;
      running.set(id, handle(next.value, fetcher, resize, resizeSlots, opts.signal).then((sample) => ({ id, sample })));
    }
  };
  await fill();
  while (running.size > 0) {
    const { id, sample } = await Promise.race(running.values());
    running.delete(id);
    yield sample;
    await fill();
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
      sha256: createHash('sha256').update(r.jpeg).digest('hex'),
    };
  } finally {
    release();
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
