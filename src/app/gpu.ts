import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ensureWorkerToken } from '../coordinator/credentials.js';
import { runCoordinator, type RunningCoordinator, type RunResult } from '../coordinator/run.js';
import type { TlsIdentity } from '../coordinator/service.js';
import { DEFAULT_COORDINATOR_SETTINGS, DEFAULT_WORKER_SETTINGS, type CoordinatorSettings } from '../coordinator/settings.js';
import { CahError } from '../errors.js';
import type { OutputMode } from '../output/ownership.js';
import { Store } from '../store/state-file.js';
import { listSwarms } from '../swarm/state.js';
import { coordinatorCertPaths } from '../swarm/tls.js';
import { openFilter, type FilterFlags } from './filter.js';
import { holdSwarm } from './hold-swarm.js';

/** What `cah gpu` and `cah demo` run with: the parsed flags of `cah gpu`. */
export interface GpuOptions extends FilterFlags {
  out: string;
  listen: string;
  localWorkers: number;
  maxRestarts: number;
  untilDone: boolean;
  allowLoopback: boolean;
  allowPrivateSources?: boolean;
  urlRetries?: number;
  leaseMs: number;
  heartbeatTimeoutMs: number;
  maxRetries: number;
  minCaptionLength: number;
  maxCaptionLength: number;
  imageSize: number;
  resizeMode: string;
  minImageSize: number;
  maxInFlight: number;
  perHostConcurrency: number;
  perHostRps: number;
  downloadTimeoutMs: number;
  maxImageBytes: number;
  respectOptOut: boolean;
  extractExif?: boolean;
  dashboard: boolean;
  metrics?: string;
  swarm: boolean;
  replaceAfterMs: number;
  tlsListen?: string;
  incremental?: boolean;
  overwrite?: boolean;
  maxLeaseAgeMs?: number;
  retryBackoffMs?: number;
}

/** A `cah gpu` run that cannot start as asked: no shards (NO_SHARDS), no certificate for TLS (NO_TLS_CERT). */
export class GpuRunError extends CahError {
  constructor(code: 'CAH_NO_SHARDS' | 'CAH_NO_TLS_CERT', message: string) {
    super(code, message);
  }
}

export function settingsFromFlags(flags: GpuOptions): CoordinatorSettings {
  return {
    ...DEFAULT_COORDINATOR_SETTINGS,
    leaseMs: flags.leaseMs,
    heartbeatTimeoutMs: flags.heartbeatTimeoutMs,
    maxRetries: flags.maxRetries,
    maxLeaseAgeMs: flags.maxLeaseAgeMs ?? DEFAULT_COORDINATOR_SETTINGS.maxLeaseAgeMs,
    retryBackoffMs: flags.retryBackoffMs ?? DEFAULT_COORDINATOR_SETTINGS.retryBackoffMs,
    worker: {
      ...DEFAULT_WORKER_SETTINGS,
      minCaptionLength: flags.minCaptionLength,
      maxCaptionLength: flags.maxCaptionLength,
      imageSize: flags.imageSize,
      resizeMode: flags.resizeMode,
      minImageSize: flags.minImageSize,
      allowLoopback: flags.allowLoopback,
      allowPrivateSources: flags.allowPrivateSources ?? false,
      urlRetries: flags.urlRetries ?? DEFAULT_WORKER_SETTINGS.urlRetries,
      maxInFlight: flags.maxInFlight,
      perHostConcurrency: flags.perHostConcurrency,
      perHostRps: flags.perHostRps,
      downloadTimeoutMs: flags.downloadTimeoutMs,
      connectTimeoutMs: Math.min(DEFAULT_WORKER_SETTINGS.connectTimeoutMs, flags.downloadTimeoutMs),
      maxImageBytes: flags.maxImageBytes,
      respectOptOut: flags.respectOptOut,
      extractExif: flags.extractExif ?? false,
      decodeTimeoutS: flags.decodeTimeoutS ?? DEFAULT_WORKER_SETTINGS.decodeTimeoutS,
      heartbeatIntervalMs: Math.max(200, Math.min(DEFAULT_WORKER_SETTINGS.heartbeatIntervalMs, Math.floor(flags.heartbeatTimeoutMs / 4))),
    },
  };
}

/** How the caller shows the run: its logger, and what starts once the coordinator serves (a dashboard, status lines). */
export interface RunPresentation {
  logger: Logger;
  present(running: RunningCoordinator): Promise<void>;
}

/**
 * `cah gpu` and `cah demo`: holds the state file's lock, serves the coordinator with its filter and
 * local workers (and TLS for direct swarm workers), holds the recorded swarm, and resolves with how
 * the run ended. Errors are cah's own (StateLockedError, ListenError, OutputDirError, GpuRunError,
 * FilterConfigError): the caller words them.
 */
export async function runGpu(
  flags: GpuOptions,
  stateDir: string,
  /** Called once the state file is held: a dashboard's log file must not be opened by a refused run. */
  show: () => RunPresentation,
  extra: { workerArgs?: string[]; workerLogDir?: string } = {},
): Promise<RunResult> {
  const store = Store.openInStateDir(stateDir);
  let releaseLock: (() => void) | null = null;
  try {
    releaseLock = store.lockForCoordinator();
    if (flags.untilDone && store.shards.list().length === 0) {
      throw new GpuRunError('CAH_NO_SHARDS', 'no shards to process: add some with `cah shards add <file|url|CC-MAIN-YYYY-WW>`');
    }
    const workerToken = await ensureWorkerToken(stateDir);
    const presentation = show();
    const { logger } = presentation;
    const tlsListen = directTlsListen(flags, stateDir);
    const filter = await openFilter(flags, logger);
    const result = await runCoordinator({
      store,
      outDir: resolve(flags.out),
      workerToken,
      settings: settingsFromFlags(flags),
      filter: filter.filter,
      batchSize: flags.batchSize,
      maxWaitMs: flags.maxWaitMs,
      filterCapacity: Math.max(flags.batchSize * 4, 512),
      ...(filter.extraColumns.length ? { extraColumns: filter.extraColumns } : {}),
      ...(filter.embeddingDim ? { embeddingDim: filter.embeddingDim } : {}),
      listen: flags.listen,
      ...(tlsListen ? { tlsListen } : {}),
      localWorkers: flags.localWorkers,
      maxRestarts: flags.maxRestarts,
      untilDone: flags.untilDone,
      logger,
      stateDir,
      outputMode: outputMode(flags),
      ...(extra.workerArgs ? { workerArgs: extra.workerArgs } : {}),
      ...(extra.workerLogDir ? { workerLogDir: extra.workerLogDir } : {}),
      onStarted: async (running) => {
        await presentation.present(running);
        if (flags.swarm) await holdSwarm(running, { stateDir, workerToken, logger, replaceAfterMs: flags.replaceAfterMs });
      },
    });
    await filter.filter.close();
    return result;
  } finally {
    releaseLock?.();
    store.close();
  }
}

function outputMode(flags: GpuOptions): OutputMode {
  return flags.overwrite ? 'overwrite' : flags.incremental ? 'incremental' : 'refuse';
}

/**
 * Where to serve TLS for workers that dial in (`cah swarm up --direct HOST:PORT`): `--tls-listen`,
 * else every interface on the port of a recorded direct swarm. The certificate is the one `up`
 * generated and the workers pin.
 */
function directTlsListen(flags: GpuOptions, stateDir: string): (TlsIdentity & { address: string }) | null {
  let address = flags.tlsListen;
  if (!address && flags.swarm) {
    const direct = listSwarms(stateDir).find((s) => s.route.mode === 'direct' && s.servers.length > 0);
    if (direct?.route.mode === 'direct') address = `0.0.0.0:${direct.route.address.slice(direct.route.address.lastIndexOf(':') + 1)}`;
  }
  if (!address) return null;
  const { certPath, keyPath } = coordinatorCertPaths(stateDir);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    throw new GpuRunError('CAH_NO_TLS_CERT', `--tls-listen needs the coordinator certificate ${certPath}: \`cah swarm up N LOCATION --direct HOST:PORT\` makes it`);
  }
  return { address, certPem: readFileSync(certPath), keyPem: readFileSync(keyPath) };
}
