import type { FilterInput, FilterVerdict, PairFilter } from './pair-filter.js';
import { BATCH_SECONDS_BOUNDS, Histogram, SIMILARITY_BOUNDS, type HistogramData } from './histogram.js';

/**
 * A filter that can split scoring in two: `prepare` (CPU work off the model: decoding, tokenizing)
 * and `infer` (the model). The stage prepares the next batch while the current one is inferring.
 */
export interface StagedPairFilter<P = unknown> extends PairFilter {
  prepare(batch: FilterInput[]): Promise<P>;
  infer(prepared: P): Promise<FilterVerdict[]>;
}

function isStaged(filter: PairFilter): filter is StagedPairFilter {
  const f = filter as Partial<StagedPairFilter>;
  return typeof f.prepare === 'function' && typeof f.infer === 'function';
}

export interface FilterStageOptions {
  /** Largest batch handed to the filter. */
  batchSize: number;
  /** A partial batch runs once its oldest pair has waited this long. */
  maxWaitMs: number;
  /** How many pairs may be outstanding; the coordinator grants stream credits from `capacity − queueDepth`. */
  capacity: number;
}

export interface FilterStageStats {
  /** Pairs finished per second over the last few seconds. */
  imagesPerSec: number;
  /** Share of the last few seconds the model had no batch to run (0..1). */
  idleFraction: number;
  lastBatchSize: number;
  batches: number;
  processed: number;
  /** Seconds each batch spent on the model. */
  batchSeconds: HistogramData;
  /** Similarity of the pairs scored (filters that give none leave it empty). */
  similarity: HistogramData;
}

interface Pending {
  input: FilterInput;
  enqueuedAt: number;
  resolve: (v: FilterVerdict) => void;
  reject: (err: Error) => void;
}

/** Rates and idle time are measured over this trailing window. */
const WINDOW_MS = 5000;

/**
 * The coordinator's dynamic batcher in front of one model: batches of up to `batchSize`, or fewer
 * after `maxWaitMs`; batches go through the model one after another, each one's preparation
 * overlapping the previous one's inference.
 */
export class FilterStage {
  private readonly waiting: Pending[] = [];
  private preparing = false;
  private ready: { batch: Pending[]; prepared: unknown } | null = null;
  private inferring = false;
  private outstanding = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private readonly createdAt = Date.now();
  private inferStartedAt: number | null = null;
  private busySpans: { start: number; end: number }[] = [];
  private finished: { at: number; count: number }[] = [];
  private counters = { lastBatchSize: 0, batches: 0, processed: 0 };
  private readonly batchSeconds = new Histogram(BATCH_SECONDS_BOUNDS);
  private readonly similarity = new Histogram(SIMILARITY_BOUNDS);
  private readonly prepareBatch: (batch: FilterInput[]) => Promise<unknown>;
  private readonly inferBatch: (prepared: unknown) => Promise<FilterVerdict[]>;

  constructor(
    private readonly filter: PairFilter,
    private readonly opts: FilterStageOptions,
  ) {
    if (!(opts.batchSize >= 1)) throw new Error(`batchSize must be at least 1, got ${opts.batchSize}`);
    if (!(opts.capacity >= 1)) throw new Error(`capacity must be at least 1, got ${opts.capacity}`);
    if (isStaged(filter)) {
      this.prepareBatch = (batch) => filter.prepare(batch);
      this.inferBatch = (prepared) => filter.infer(prepared);
    } else {
      this.prepareBatch = async (batch) => batch;
      this.inferBatch = (prepared) => filter.score(prepared as FilterInput[]);
    }
  }

  get filterName(): string {
    return this.filter.name;
  }

  get provider(): string {
    return this.filter.provider;
  }

  /** Pairs submitted and not yet answered (waiting, preparing or on the model). */
  get queueDepth(): number {
    return this.outstanding;
  }

  get capacity(): number {
    return this.opts.capacity;
  }

  submit(input: FilterInput): Promise<FilterVerdict> {
    if (this.closed) return Promise.reject(new Error('filter stage is closed'));
    return new Promise<FilterVerdict>((resolve, reject) => {
      this.outstanding++;
      this.waiting.push({ input, enqueuedAt: Date.now(), resolve, reject });
      this.pump();
    });
  }

  stats(): FilterStageStats {
    const now = Date.now();
    const since = Math.max(this.createdAt, now - WINDOW_MS);
    const span = now - since;
    this.busySpans = this.busySpans.filter((s) => s.end > since);
    this.finished = this.finished.filter((f) => f.at > since);
    let busy = this.busySpans.reduce((sum, s) => sum + (s.end - Math.max(s.start, since)), 0);
    if (this.inferStartedAt !== null) busy += now - Math.max(this.inferStartedAt, since);
    const done = this.finished.reduce((sum, f) => sum + f.count, 0);
    return {
      imagesPerSec: span > 0 ? (done * 1000) / span : 0,
      idleFraction: span > 0 ? Math.min(1, Math.max(0, 1 - busy / span)) : 1,
      ...this.counters,
      batchSeconds: this.batchSeconds.data(),
      similarity: this.similarity.data(),
    };
  }

  /** Resolves once nothing is waiting, preparing or running. */
  drain(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Refuses new pairs and fails those not yet in a batch; resolves when batches already running finish. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    for (const p of this.waiting.splice(0)) this.settle(p, new Error('filter stage closed'));
    await this.drain();
  }

  private pump(): void {
    if (this.ready && !this.inferring) this.startInference();
    if (this.preparing || this.ready || this.waiting.length === 0) return;
    const oldestWait = Date.now() - this.waiting[0]!.enqueuedAt;
    if (this.waiting.length >= this.opts.batchSize || oldestWait >= this.opts.maxWaitMs) {
      this.clearTimer();
      this.startPreparation(this.waiting.splice(0, this.opts.batchSize));
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, this.opts.maxWaitMs - oldestWait);
    }
  }

  private startPreparation(batch: Pending[]): void {
    this.preparing = true;
    this.prepareBatch(batch.map((p) => p.input)).then(
      (prepared) => {
        this.preparing = false;
        this.ready = { batch, prepared };
        this.pump();
      },
      (err: unknown) => {
        this.preparing = false;
        this.fail(batch, err);
        this.pump();
      },
    );
  }

  private startInference(): void {
    const { batch, prepared } = this.ready!;
    this.ready = null;
    this.inferring = true;
    this.inferStartedAt = Date.now();
    const finish = (): void => {
      this.busySpans.push({ start: this.inferStartedAt!, end: Date.now() });
      this.batchSeconds.observe((Date.now() - this.inferStartedAt!) / 1000);
      this.inferStartedAt = null;
      this.inferring = false;
      this.counters.batches++;
      this.counters.lastBatchSize = batch.length;
    };
    this.inferBatch(prepared).then(
      (verdicts) => {
        finish();
        if (verdicts.length !== batch.length) {
          this.fail(batch, new Error(`filter ${this.filter.name} answered ${verdicts.length} verdicts for ${batch.length} pairs`));
        } else {
          this.counters.processed += batch.length;
          this.finished.push({ at: Date.now(), count: batch.length });
          for (const v of verdicts) if (v.similarity !== null) this.similarity.observe(v.similarity);
          batch.forEach((p, i) => this.settle(p, verdicts[i]!));
        }
        this.pump();
      },
      (err: unknown) => {
        finish();
        this.fail(batch, err);
        this.pump();
      },
    );
  }

  private fail(batch: Pending[], err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    for (const p of batch) this.settle(p, error);
  }

  private settle(p: Pending, outcome: FilterVerdict | Error): void {
    this.outstanding--;
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome);
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.outstanding === 0 && this.drainWaiters.length > 0) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
