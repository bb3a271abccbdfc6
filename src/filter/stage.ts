import type { FilterInput, FilterVerdict, PairFilter } from './filter.js';

export interface FilterStageOptions {
  /** Largest batch handed to the filter. */
  batchSize: number;
  /** A partial batch runs after waiting this long for more input. */
  maxWaitMs: number;
  /** The most samples waiting or being scored; stream credits are granted against it. */
  capacity: number;
}

interface Pending {
  input: FilterInput;
  resolve: (v: FilterVerdict) => void;
  reject: (e: Error) => void;
}

/**
 * Dynamic batching in front of one filter: batches of up to batchSize, or whatever arrived within
 * maxWaitMs, scored one after another. queueDepth (waiting + being scored) drives backpressure.
 */
export class FilterStage {
  private queue: Pending[] = [];
  private inBatch = 0;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private lastBatchSize = 0;
  private batches = 0;
  private processed = 0;
  private window = { startedAt: Date.now(), busyMs: 0, processed: 0 };
  private lastRates = { imagesPerSec: 0, idleFraction: 1 };
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly filter: PairFilter,
    private readonly opts: FilterStageOptions,
  ) {}

  get provider(): string {
    return this.filter.provider;
  }

  get filterName(): string {
    return this.filter.name;
  }

  get queueDepth(): number {
    return this.queue.length + this.inBatch;
  }

  get capacity(): number {
    return this.opts.capacity;
  }

  submit(input: FilterInput): Promise<FilterVerdict> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  stats(): { imagesPerSec: number; idleFraction: number; lastBatchSize: number; batches: number; processed: number } {
    const now = Date.now();
    const elapsed = now - this.window.startedAt;
    if (elapsed >= 2000) {
      this.lastRates = {
        imagesPerSec: (this.window.processed * 1000) / elapsed,
        idleFraction: Math.max(0, 1 - this.window.busyMs / elapsed),
      };
      this.window = { startedAt: now, busyMs: 0, processed: 0 };
    }
    return { ...this.lastRates, lastBatchSize: this.lastBatchSize, batches: this.batches, processed: this.processed };
  }

  /** Resolves when nothing is queued or being scored. */
  drain(): Promise<void> {
    if (this.queueDepth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.drain();
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.opts.batchSize) {
      void this.runBatch();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.running && this.queue.length > 0) void this.runBatch();
      }, this.opts.maxWaitMs);
    }
  }

  private async runBatch(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.running = true;
    const batch = this.queue.splice(0, this.opts.batchSize);
    this.inBatch = batch.length;
    const started = Date.now();
    try {
      const verdicts = await this.filter.score(batch.map((p) => p.input));
      if (verdicts.length !== batch.length) throw new Error(`filter returned ${verdicts.length} verdicts for ${batch.length} inputs`);
      batch.forEach((p, i) => p.resolve(verdicts[i]!));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      for (const p of batch) p.reject(e);
    } finally {
      this.window.busyMs += Date.now() - started;
      this.window.processed += batch.length;
      this.processed += batch.length;
      this.batches++;
      this.lastBatchSize = batch.length;
      this.inBatch = 0;
      this.running = false;
      if (this.queue.length > 0) this.schedule();
      else for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }
}
