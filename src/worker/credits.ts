/** The worker's side of stream backpressure: one credit per sample it may send. */
export class CreditWallet {
  private available = 0;
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private closedWith: Error | null = null;

  add(credits: number): void {
    this.available += credits;
    while (this.available > 0 && this.waiters.length > 0) {
      this.available--;
      this.waiters.shift()!.resolve();
    }
  }

  take(): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.available > 0) {
      this.available--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(err: Error): void {
    this.closedWith ??= err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }
}
