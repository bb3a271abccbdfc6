import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RunningCoordinator } from '../coordinator/run.js';
import type { CoordinatorSnapshot } from '../coordinator/snapshot.js';
import { startMetricsServer } from '../coordinator/metrics.js';
import type { SnapshotSource } from '../dashboard/source.js';
import { startDashboard } from '../dashboard/render.js';
import { startStatusLog } from '../dashboard/log-lines.js';
import { costOfRun, recordedSwarmPrice, type SwarmPrice } from '../swarm/cost.js';

export const LIVE_STATUS_FILE = 'live-status.json';
const LIVE_STATUS_INTERVAL_MS = 2000;

/** How often the recorded swarm's price is read again (servers come and go with `swarm up`/`down`). */
const SWARM_PRICE_REFRESH_MS = 10_000;

/**
 * A snapshot source over the running coordinator, cached briefly so many readers cost one build;
 * with a state directory, the output figures carry the swarm's cost (€/h, kept pairs per €).
 */
export function coordinatorSource(running: RunningCoordinator, stateDir?: string): SnapshotSource {
  let cached: { at: number; snapshot: CoordinatorSnapshot } | null = null;
  let price: { at: number; value: SwarmPrice | null } | null = null;
  const withCost = (snapshot: CoordinatorSnapshot): CoordinatorSnapshot => {
    if (!stateDir) return snapshot;
    if (!price || snapshot.nowMs - price.at > SWARM_PRICE_REFRESH_MS) price = { at: snapshot.nowMs, value: recordedSwarmPrice(stateDir) };
    if (!price.value || price.value.hourlyGross === 0) return snapshot;
    const cost = costOfRun(price.value, { startedAtMs: snapshot.startedAtMs, nowMs: snapshot.nowMs, kept: snapshot.totals.kept });
    return { ...snapshot, output: { ...snapshot.output, cost: { hourlyGross: cost.hourlyGross, keptPerEuro: cost.keptPerEuro } } };
  };
  return {
    current() {
      const now = Date.now();
      if (!cached || now - cached.at > 100) cached = { at: now, snapshot: withCost(running.snapshot()) };
      return cached.snapshot;
    },
    subscribe(listener) {
      running.coordinator.on('tick', listener);
      running.coordinator.on('change', listener);
      return () => {
        running.coordinator.off('tick', listener);
        running.coordinator.off('change', listener);
      };
    },
  };
}

/**
 * How a run shows itself: the ink dashboard on a TTY, JSON status lines otherwise; /metrics when
 * asked; and a live-status file that `cah status` reads from another terminal.
 */
export async function presentRun(
  running: RunningCoordinator,
  opts: { flags: { metrics?: string }; stateDir: string; logger: Logger; interactive: boolean; title: string },
): Promise<void> {
  const source = coordinatorSource(running, opts.stateDir);
  const stops: (() => unknown)[] = [];
  if (opts.interactive) {
    const dashboard = startDashboard(source, {
      pauseLeasing: (paused) => running.coordinator.setPaused(paused),
      drainAndQuit: () => running.drainAndQuit(),
    });
    stops.push(() => dashboard.stop());
  } else {
    const log = startStatusLog(source, opts.logger);
    stops.push(() => log.stop());
  }
  if (opts.flags.metrics) {
    const metrics = await startMetricsServer(source, opts.flags.metrics);
    opts.logger.info({ port: metrics.port }, 'serving Prometheus /metrics');
    stops.push(() => metrics.close());
  }
  const livePath = join(opts.stateDir, LIVE_STATUS_FILE);
  const writeLive = async (): Promise<void> => {
    const tmp = `${livePath}.tmp`;
    await writeFile(tmp, JSON.stringify({ port: running.port, snapshot: source.current() }));
    await rename(tmp, livePath);
  };
  const liveTimer = setInterval(() => void writeLive().catch(() => undefined), LIVE_STATUS_INTERVAL_MS);
  liveTimer.unref();
  stops.push(() => clearInterval(liveTimer));
  running.coordinator.once('stopped', () => {
    for (const stop of stops.reverse()) void stop();
  });
}
