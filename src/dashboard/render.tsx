import { render } from 'ink';
import { performance } from 'node:perf_hooks';
import { DEFAULT_REFRESH_MS, Dashboard } from './app.js';
import type { CoordinatorSnapshot } from '../coordinator/snapshot.js';
import type { DashboardControls, SnapshotSource } from '../coordinator/snapshot-source.js';

export { DEFAULT_REFRESH_MS };

/** How often React's development build has its timing entries dropped (see below). */
const CLEAR_MEASURES_MS = 5000;

export interface DashboardOptions {
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** Least time between two redraws (default DEFAULT_REFRESH_MS). */
  refreshMs?: number;
  /** First word of the header line (default "cah gpu"). */
  title?: string;
}

/**
 * Draws the dashboard on the terminal until stop(). Keys: q drain & quit, p pause/resume leasing,
 * ? help; Ctrl+C drains too, a second Ctrl+C raises SIGINT. The last frame stays on screen.
 */
export function startDashboard(
  source: SnapshotSource,
  controls: DashboardControls,
  opts: DashboardOptions = {},
): { stop(final?: CoordinatorSnapshot): Promise<void> } {
  const refreshMs = Math.max(10, opts.refreshMs ?? DEFAULT_REFRESH_MS);
  const element = (final?: CoordinatorSnapshot) => (
    <Dashboard
      source={source}
      controls={controls}
      refreshMs={refreshMs}
      {...(opts.title ? { title: opts.title } : {})}
      {...(final ? { final } : {})}
    />
  );
  const instance = render(
    element(),
    {
      stdout: opts.stdout ?? process.stdout,
      stdin: opts.stdin ?? process.stdin,
      exitOnCtrlC: false,
      maxFps: Math.ceil(1000 / refreshMs),
    },
  );
  // React's development build records a performance measure per component render, and Node keeps
  // them all: hundreds of KB a frame. Without NODE_ENV=production, drop them now and then.
  const devTimings =
    process.env['NODE_ENV'] === 'production' ? null : setInterval(() => performance.clearMeasures(), CLEAR_MEASURES_MS);
  devTimings?.unref();
  let stopped: Promise<void> | null = null;
  return {
    /** Redraws the last frame from `final` (the run as it ended), then leaves it on screen. */
    stop(final?: CoordinatorSnapshot) {
      stopped ??= (async () => {
        if (devTimings) clearInterval(devTimings);
        if (final) instance.rerender(element(final));
        instance.unmount();
        await instance.waitUntilExit();
      })();
      return stopped;
    },
  };
}
