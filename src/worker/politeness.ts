import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Per-host politeness: at most `concurrency` requests in flight to one host and request starts
 * spaced at least 1/rps apart, so that no site sees a burst from a worker.
 */
export class HostLimiter {
  private readonly hosts = new Map<string, { active: number; nextStart: number; waiters: (() => void)[] }>();
  /** Idle entries are swept when the map reaches this size; doubling keeps sweeps amortised O(1). */
  private sweepAt = 1024;

  constructor(
    private readonly concurrency: number,
    private readonly rps: number,
  ) {}

  /** Hosts with an entry (busy, or idle within their spacing interval). */
  get size(): number {
    return this.hosts.size;
  }

  async acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    if (this.hosts.size >= this.sweepAt) this.sweep();
    let state = this.hosts.get(host);
    if (!state) {
      state = { active: 0, nextStart: 0, waiters: [] };
      this.hosts.set(host, state);
    }
    while (state.active >= this.concurrency) await new Promise<void>((resolve) => state!.waiters.push(resolve));
    state.active++;
    const now = Date.now();
    const start = Math.max(now, state.nextStart);
    state.nextStart = start + 1000 / this.rps;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      state!.active--;
      state!.waiters.shift()?.();
      if (state!.active === 0 && state!.waiters.length === 0 && state!.nextStart <= Date.now()) this.hosts.delete(host);
    };
    if (start > now) {
      try {
        await sleep(start - now, undefined, signal ? { signal } : {});
      } catch (err) {
        release();
        throw err;
      }
    }
    return release;
  }

  /** Holds every request to `host` back for `ms` (a server said 429/503, or timed out): per-host backoff. */
  backoff(host: string, ms: number): void {
    let state = this.hosts.get(host);
    if (!state) {
      state = { active: 0, nextStart: 0, waiters: [] };
      this.hosts.set(host, state);
    }
    state.nextStart = Math.max(state.nextStart, Date.now() + ms);
  }

  /** Drops hosts with nothing in flight, nobody waiting and their spacing interval over. */
  private sweep(): void {
    const now = Date.now();
    for (const [host, state] of this.hosts) {
      if (state.active === 0 && state.waiters.length === 0 && state.nextStart <= now) this.hosts.delete(host);
    }
    this.sweepAt = Math.max(1024, this.hosts.size * 2);
  }
}

/** Round-robin across hosts, so a shard's candidates for one site are spread out. */
export function interleaveByHost<T extends { url: string }>(items: readonly T[]): T[] {
  const byHost = new Map<string, T[]>();
  for (const item of items) {
    let host = '';
    try {
      host = new URL(item.url).hostname;
    } catch {
      host = '';
    }
    let list = byHost.get(host);
    if (!list) byHost.set(host, (list = []));
    list.push(item);
  }
  const queues = [...byHost.values()];
  const out: T[] = [];
  for (let i = 0; out.length < items.length; i++) {
    for (const q of queues) if (i < q.length) out.push(q[i]!);
  }
  return out;
}
