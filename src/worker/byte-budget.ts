/**
 * Bytes of response bodies held at once across all downloads. A download waits for room before
 * taking more, except the oldest holder, which may always go on (it will finish or time out and
 * hand its bytes back), so downloads never deadlock and at most `limit` + one body is held.
 */
export class ByteBudget {
  private used = 0;
  private peak = 0;
  /** Insertion order is age: the first holder is the oldest. */
  private readonly holders = new Map<object, number>();
  private waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get held(): number {
    return this.used;
  }

  /** The most ever held at once. */
  get peakHeld(): number {
    return this.peak;
  }

  async take(holder: object, bytes: number, signal?: AbortSignal): Promise<void> {
    while (this.used + bytes > this.limit && this.holders.size > 0 && this.holders.keys().next().value !== holder) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.used += bytes;
    this.peak = Math.max(this.peak, this.used);
    this.holders.set(holder, (this.holders.get(holder) ?? 0) + bytes);
  }

  release(holder: object): void {
    const bytes = this.holders.get(holder);
    if (bytes === undefined) return;
    this.holders.delete(holder);
    this.used -= bytes;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
