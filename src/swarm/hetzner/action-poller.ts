import { setTimeout as sleep } from 'node:timers/promises';
import { HetznerApiError } from './errors.js';
import type { Action } from './types.js';

/** The API answers `GET /actions?id=…` for this many IDs per request (kept well below URL limits). */
export const ACTIONS_PER_REQUEST = 25;

interface Waiter {
  resolve: (action: Action) => void;
  reject: (err: Error) => void;
  deadline: number;
  timeoutMs: number;
}

/**
 * Waits for actions the way hcloud-go does: every running action of one project is polled together
 * (`GET /actions?id=1&id=2…`, 25 IDs a request), the interval rising from `baseMs` to `maxMs` while
 * nothing new is waited for. Fifty servers starting together cost one request per interval, not fifty.
 */
export class ActionPoller {
  private readonly waiting = new Map<number, Waiter[]>();
  private running = false;
  private rounds = 0;

  constructor(
    private readonly fetch: (ids: number[]) => Promise<Action[]>,
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  /** Resolves with the finished action; an action ending in `error` rejects with its code and message. */
  wait(action: Action, timeoutMs: number): Promise<Action> {
    if (action.status !== 'running') return settled(action);
    return new Promise<Action>((resolve, reject) => {
      const waiters = this.waiting.get(action.id) ?? [];
      waiters.push({ resolve, reject, deadline: Date.now() + timeoutMs, timeoutMs });
      this.waiting.set(action.id, waiters);
      // A new action starts its own backoff from the base interval, as each hcloud-go waiter does.
      this.rounds = 0;
      if (!this.running) void this.loop();
    });
  }

  private interval(): number {
    return Math.min(this.maxMs, this.baseMs * 2 ** this.rounds++);
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.size > 0) {
        await sleep(this.interval());
        const ids = [...this.waiting.keys()];
        for (let i = 0; i < ids.length; i += ACTIONS_PER_REQUEST) {
          const chunk = ids.slice(i, i + ACTIONS_PER_REQUEST);
          let actions: Action[];
          try {
            actions = await this.fetch(chunk);
          } catch (err) {
            for (const id of chunk) this.finish(id, (w) => w.reject(err as Error));
            continue;
          }
          for (const action of actions) {
            if (action.status !== 'running') this.finish(action.id, (w) => settled(action).then(w.resolve, w.reject));
          }
        }
        const now = Date.now();
        for (const [id, waiters] of this.waiting) {
          const expired = waiters.filter((w) => now > w.deadline);
          for (const w of expired) {
            w.reject(new HetznerApiError('timeout', `action ${id} still running after ${Math.round(w.timeoutMs / 1000)} s`, 0));
          }
          const left = waiters.filter((w) => now <= w.deadline);
          if (left.length) this.waiting.set(id, left);
          else this.waiting.delete(id);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private finish(id: number, settle: (w: Waiter) => void): void {
    const waiters = this.waiting.get(id) ?? [];
    this.waiting.delete(id);
    for (const w of waiters) settle(w);
  }
}

function settled(action: Action): Promise<Action> {
  if (action.status === 'error') {
    return Promise.reject(
      new HetznerApiError(action.error?.code ?? 'action_failed', `action ${action.command} failed: ${action.error?.message ?? 'unknown error'}`, 0),
    );
  }
  return Promise.resolve(action);
}
