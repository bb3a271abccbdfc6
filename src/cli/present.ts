import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RunningCoordinator } from '../coordinator/run.js';
import type { CoordinatorSnapshot, RunLocations } from '../coordinator/snapshot.js';
import { WORKER_TOKEN_FILE } from '../coordinator/credentials.js';
import { startMetricsServer } from '../coordinator/metrics.js';
import type { SnapshotSource } from '../coordinator/snapshot-source.js';
import { startDashboard } from '../dashboard/render.js';
import { closingLine, startStatusLog } from '../dashboard/log-lines.js';
import { LIVE_STATUS_FILE } from './status.js';
import { costOfRun, recordedSwarmPrice, type SwarmPrice } from '../swarm/cost.js';

const LIVE_STATUS_INTERVAL_MS = 2000;

/** How often the recorded swarm's price is read again (servers come and go with `swarm up`/`down`). */
const SWARM_PRICE_REFRESH_MS = 10_000;

/** Where `cah gpu` writes its log while the dashboard has the terminal. */
export function coordinatorLogPath(stateDir: string): string {
  return join(stateDir, 'logs', 'coordinator.log');
}

/** The directory that keeps each local worker's stderr (`local-N.log`). */
export function workerLogDir(stateDir: string): string {
  return join(stateDir, 'logs');
}

/** A snapshot source that can also build a fresh snapshot, bypassing its cache (the final frame). */
export interface CoordinatorSource extends SnapshotSource {
  fresh(): CoordinatorSnapshot;
}

/**
 * A snapshot source over the running coordinator, cached briefly so many readers cost one build;
 * with a state directory, the output figures carry the swarm's cost (€/h, kept pairs per €).
 */
export function coordinatorSource(running: RunningCoordinator, stateDir?: string, where?: RunLocations): CoordinatorSource {
  let cached: { at: number; snapshot: CoordinatorSnapshot } | null = null;
  let price: { at: number; value: SwarmPrice | null } | null = null;
  const withCost = (snapshot: CoordinatorSnapshot): CoordinatorSnapshot => {
    if (!stateDir) return snapshot;
    if (!price || snapshot.nowMs - price.at > SWARM_PRICE_REFRESH_MS) price = { at: snapshot.nowMs, value: recordedSwarmPrice(stateDir) };
    if (!price.value || price.value.hourlyGross === 0) return snapshot;
    const cost = costOfRun(price.value, { startedAtMs: snapshot.startedAtMs, nowMs: snapshot.nowMs, kept: snapshot.totals.kept });
    return { ...snapshot, output: { ...snapshot.output, cost: { hourlyGross: cost.hourlyGross, keptPerEuro: cost.keptPerEuro } } };
  };
  const build = (): CoordinatorSnapshot => {
    const snapshot = withCost(running.snapshot());
    return where ? { ...snapshot, where } : snapshot;
  };
  return {
    current() {
      const now = Date.now();
      if (!cached || now - cached.at > 100) cached = { at: now, snapshot: build() };
      return cached.snapshot;
    },
    fresh() {
      cached = { at: Date.now(), snapshot: build() };
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
  opts: { flags: { metrics?: string; listen: string }; stateDir: string; logger: Logger; interactive: boolean; title: string },
): Promise<void> {
  const stops: (() => unknown)[] = [];
  let metrics: Awaited<ReturnType<typeof startMetricsServer>> | null = null;
  if (opts.flags.metrics) {
    metrics = await startMetricsServer({ current: () => source.current(), subscribe: (l) => source.subscribe(l) }, opts.flags.metrics);
    stops.push(() => metrics!.close());
  }
  const where: RunLocations = {
    logFile: opts.interactive ? coordinatorLogPath(opts.stateDir) : null,
    metrics: metrics ? metricsUrl(opts.flags.metrics!, metrics.port) : null,
    attachWorker: attachCommand(opts.flags.listen, running.port, opts.stateDir),
  };
  const source = coordinatorSource(running, opts.stateDir, where);
  opts.logger.info(
    { log_file: where.logFile, metrics: where.metrics, attach_worker: where.attachWorker, worker_logs: workerLogDir(opts.stateDir) },
    'where things are',
  );
  let closing: (final: CoordinatorSnapshot) => Promise<void>;
  if (opts.interactive) {
    const dashboard = startDashboard(source, {
      pauseLeasing: (paused) => running.coordinator.setPaused(paused),
      drainAndQuit: () => running.drainAndQuit(),
    }, { title: opts.title });
    closing = (final) => dashboard.stop(final);
  } else {
    const log = startStatusLog(source, opts.logger);
    closing = async () => log.stop();
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
    // The last frame shows the run as it ended; then one line says how it ended and what it made.
    const final = source.fresh();
    void closing(final).then(() => {
      const line = `${opts.title}: ${closingLine(final)}`;
      // On a terminal, under the last frame; otherwise the log stays JSON lines.
      if (opts.interactive) process.stderr.write(`${line}${where.logFile ? ` · log ${where.logFile}` : ''}\n`);
      else opts.logger.info({ run_id: final.runId, ended: final.ended?.reason ?? null }, line);
    });
    for (const stop of stops.reverse()) void stop();
  });
}

/** The /metrics URL for a listen address and the port it got. */
function metricsUrl(addr: string, port: number): string {
  const host = addr.slice(0, addr.lastIndexOf(':')) || '0.0.0.0';
  return `http://${host}:${port}/metrics`;
}

/** How to attach a worker to this coordinator from this machine (as `ray start --address` says). */
function attachCommand(listen: string, port: number, stateDir: string): string {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  const dial = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  return `CAH_WORKER_TOKEN=$(cat ${join(stateDir, WORKER_TOKEN_FILE)}) cah worker --coordinator ${dial}:${port}`;
}
