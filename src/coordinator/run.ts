import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ExtraColumn, PairFilter } from '../filter/pair-filter.js';
import { FilterStage } from '../filter/stage.js';
import type { OutputMode } from '../output/ownership.js';
import type { Store } from '../store/state-file.js';
import type { TlsIdentity } from './service.js';
import { Coordinator } from './head.js';
import { LocalWorkerPool } from './local-workers.js';
import type { CoordinatorSettings } from './settings.js';
import type { CoordinatorSnapshot } from './snapshot.js';

export interface RunOptions {
  store: Store;
  outDir: string;
  workerToken: string;
  settings: CoordinatorSettings;
  filter: PairFilter;
  batchSize: number;
  maxWaitMs: number;
  /** Filter queue capacity: the most samples waiting for the filter across the whole swarm. */
  filterCapacity: number;
  extraColumns?: ExtraColumn[];
  embeddingDim?: number;
  listen: string;
  /** Also serve TLS here (for `--direct` swarm workers). */
  tlsListen?: TlsIdentity & { address: string };
  localWorkers: number;
  maxRestarts: number;
  untilDone: boolean;
  logger: Logger;
  /** Extra `cah worker` flags for local workers (tests). */
  workerArgs?: string[];
  /** Where local workers' stderr is kept. */
  workerLogDir?: string;
  /** Called once the coordinator serves, e.g. to start the dashboard or the swarm tunnels. */
  onStarted?: (run: RunningCoordinator) => void | Promise<void>;
  /** How long a drain waits for workers to finish their shards before returning the leases. */
  drainTimeoutMs?: number;
  /** A non-empty output directory of another run: refuse (default), --incremental or --overwrite. */
  outputMode?: OutputMode;
  stateDir?: string;
}

export interface RunningCoordinator {
  coordinator: Coordinator;
  port: number;
  workers: LocalWorkerPool | null;
  /** `q`: finish in-flight work (or return leases after the timeout) and exit. */
  drainAndQuit(): void;
  snapshot(): CoordinatorSnapshot;
}

export interface RunResult {
  /** failed: the run could not go on (every local worker dead for good, the state file failed); see `error`. */
  exitReason: 'done' | 'drained' | 'stopped' | 'failed';
  snapshot: CoordinatorSnapshot;
  /** One line saying why the run failed. */
  error?: string;
}

/** After the last shard, workers of other machines get this long to hear "drained" and exit. */
const LINGER_FOR_REMOTE_MS = 2500;

/**
 * `cah gpu`: the coordinator with its filter stage and, optionally, local worker actors; resolves
 * when every shard is done (with --until-done), or after a drain (q / SIGINT / SIGTERM). The
 * caller holds the state file (`store.lockForCoordinator()`).
 */
export async function runCoordinator(opts: RunOptions): Promise<RunResult> {
  await mkdir(opts.outDir, { recursive: true });
  const stage = new FilterStage(opts.filter, {
    batchSize: opts.batchSize,
    maxWaitMs: opts.maxWaitMs,
    capacity: opts.filterCapacity,
  });
  const coordinator = new Coordinator({
    store: opts.store,
    outDir: opts.outDir,
    workerToken: opts.workerToken,
    filter: stage,
    settings: opts.settings,
    logger: opts.logger,
    ...(opts.extraColumns ? { extraColumns: opts.extraColumns } : {}),
    ...(opts.embeddingDim ? { embeddingDim: opts.embeddingDim } : {}),
    ...(opts.outputMode ? { outputMode: opts.outputMode } : {}),
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
  });
  const port = await coordinator.start(opts.listen, opts.tlsListen);
  const host = opts.listen.startsWith('[') ? opts.listen.slice(0, opts.listen.lastIndexOf(']') + 1) : opts.listen.split(':')[0]!;
  const dialHost = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  const workers =
    opts.localWorkers > 0
      ? new LocalWorkerPool({
          count: opts.localWorkers,
          coordinatorAddress: `${dialHost}:${port}`,
          workerToken: opts.workerToken,
          maxRestarts: opts.maxRestarts,
          logger: opts.logger,
          onDeath: (actorId, cause, restarting) =>
            void coordinator.actorDied(actorId, cause, restarting).catch((err: unknown) => opts.logger.error({ actor: actorId, err: String(err) }, 'actor death not recorded')),
          ...(opts.workerArgs ? { extraArgs: opts.workerArgs } : {}),
          ...(opts.workerLogDir ? { logDir: opts.workerLogDir } : {}),
        })
      : null;
  if (workers) for (const id of workers.actorIds) coordinator.actors.expect(id, 'local', 'localhost');
  workers?.start();

  let finish!: (reason: RunResult['exitReason']) => void;
  const finished = new Promise<RunResult['exitReason']>((resolve) => (finish = resolve));
  let error: string | undefined;
  const fail = (message: string): void => {
    error ??= message;
    finish('failed');
  };
  coordinator.once('fatal', (err: Error) => fail(err.message));
  let drainDeadline: number | null = null;
  const drainAndQuit = (): void => {
    if (drainDeadline !== null) {
      finish('stopped');
      return;
    }
    drainDeadline = Date.now() + (opts.drainTimeoutMs ?? 60_000);
    coordinator.beginDrain();
  };
  const check = (): void => {
    if (coordinator.fatalError) fail(coordinator.fatalError.message);
    else if (opts.untilDone && coordinator.isDone()) finish('done');
    else if (workers?.exhausted() && !coordinator.isDone() && !coordinator.actors.list().some((a) => a.state === 'ALIVE')) {
      // Ray fails the caller with the death cause; a run with no worker left would idle forever.
      fail(`every local worker is DEAD (out of restarts, --max-restarts ${opts.maxRestarts}) and no other worker is alive, with shards left: ${workers.exhausted()}`);
    } else if (drainDeadline !== null && (coordinator.leasedCount() === 0 || Date.now() > drainDeadline)) finish('drained');
  };
  coordinator.on('tick', check);
  coordinator.on('change', check);
  const onSignal = (): void => drainAndQuit();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const running: RunningCoordinator = { coordinator, port, workers, drainAndQuit, snapshot: () => coordinator.snapshot() };
  await opts.onStarted?.(running);
  check();
  const reason = await finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  coordinator.off('tick', check);
  coordinator.off('change', check);
  coordinator.beginDrain();
  await workers?.stop();
  if (reason === 'done' && coordinator.actors.list().some((a) => a.state === 'ALIVE' && a.kind !== 'local')) {
    // Workers of other machines (--exit-when-drained) learn "drained" from their next call instead of dialing a gone coordinator forever.
    await new Promise((resolve) => setTimeout(resolve, LINGER_FOR_REMOTE_MS));
  }
  await coordinator.stop(reason);
  await stage.close();
  const snapshot = coordinator.snapshot();
  opts.logger.info(
    { reason, shards: snapshot.shards, kept: snapshot.totals.kept, out: opts.outDir, ...(error ? { error } : {}) },
    'coordinator stopped',
  );
  return { exitReason: reason, snapshot, ...(error ? { error } : {}) };
}
