import type { WireSample } from '../wire/contract.js';

export interface BatchLimits {
  /** Samples per message at most. */
  maxSamples: number;
  /** A message is sent once its images reach this many bytes. */
  maxBytes: number;
}

/** Small enough that the coordinator sees samples promptly, large enough to amortise per-message cost. */
export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxSamples: 16, maxBytes: 512 * 1024 };

/**
 * Packs samples into stream messages. A message goes out when it is full, or as soon as the
 * producer has nothing more ready (a setImmediate after the last push): samples that finish
 * together travel together, and a lone sample never waits for company.
 */
export class SampleBatcher {
  private pending: WireSample[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | null = null;
  private drained: Promise<void> | null = null;

  constructor(
    /** Writes one message; false when the stream's buffer is full. */
    private readonly send: (samples: WireSample[]) => boolean,
    private readonly waitForDrain: () => Promise<void>,
    private readonly limits: BatchLimits = DEFAULT_BATCH_LIMITS,
  ) {}

  /** Queues a sample; waits while the stream is draining. */
  async push(sample: WireSample): Promise<void> {
    if (this.drained) await this.drained;
    this.pending.push(sample);
    this.bytes += sample.jpeg.length;
    if (this.pending.length >= this.limits.maxSamples || this.bytes >= this.limits.maxBytes) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
  }

  /** Sends what is queued and waits until the stream has taken it. */
  async end(): Promise<void> {
    this.flush();
    if (this.drained) await this.drained;
  }

  /** Drops what is queued (the stream failed). */
  discard(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.pending = [];
    this.bytes = 0;
  }

  private flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.bytes = 0;
    if (!this.send(batch)) this.drained ??= this.waitForDrain().finally(() => (this.drained = null));
  }
}
