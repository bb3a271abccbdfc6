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
