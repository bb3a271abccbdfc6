import type { CoordinatorSnapshot } from './snapshot.js';

/** What the dashboard's keys do to the run. */
export interface DashboardControls {
  pauseLeasing(paused: boolean): void;
  drainAndQuit(): void;
}

/** Where the views read the run from: the latest snapshot, and a nudge when it changed. */
export interface SnapshotSource {
  current(): CoordinatorSnapshot;
  /** Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/** A source that holds one snapshot and tells subscribers when set() replaces it. */
export class HeldSnapshotSource implements SnapshotSource {
  private readonly listeners = new Set<() => void>();

  constructor(private snapshot: CoordinatorSnapshot) {}

  current(): CoordinatorSnapshot {
    return this.snapshot;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  set(snapshot: CoordinatorSnapshot): void {
    this.snapshot = snapshot;
    for (const listener of this.listeners) listener();
  }
}
