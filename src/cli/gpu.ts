import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseListenAddress } from '../coordinator/metrics.js';
import { resolve } from 'node:path';
import { ensureWorkerToken } from '../coordinator/credentials.js';
import { runCoordinator, type RunResult } from '../coordinator/run.js';
import { DEFAULT_COORDINATOR_SETTINGS, DEFAULT_WORKER_SETTINGS, type CoordinatorSettings } from '../coordinator/settings.js';
import { StateLockedError } from '../store/coordinator-lock.js';
import { Store } from '../store/store.js';
import { CliError, reportOutcome, type Outcome } from './errors.js';
import { createLogger, exposedListenWarning, intFlag, numberFlag, resolveStateDir } from './state.js';
import { openFilter, type FilterFlags } from './filter-flags.js';
import { coordinatorLogPath, presentRun, workerLogDir } from './present.js';
import { existsSync, readFileSync } from 'node:fs';
import { ListenError, type TlsIdentity } from '../coordinator/service.js';
import { OutputDirError } from '../output/ownership.js';
import { listSwarms } from '../swarm/state.js';
import { coordinatorCertPaths } from '../swarm/tls.js';
import { SwarmSupervisor } from '../swarm/supervisor.js';
import type { RunningCoordinator } from '../coordinator/run.js';
import type { Logger } from 'pino';

const LISTEN_ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d{1,5}$/;

export interface GpuFlags extends FilterFlags {
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

/** The flags `cah gpu` and `cah demo` share, with their defaults. */
export function addCoordinatorOptions(cmd: Command): Command {
  return cmd
    .option('--out <dir>', 'dataset output directory', './dataset')
    .option('--listen <addr>', 'gRPC listen address (workers dial it; swarm workers reach it through SSH tunnels)', '127.0.0.1:7443')
    .option('--local-workers <n>', 'start N worker actors on this machine', intFlag(0), 0)
    .option('--max-restarts <n>', 'restarts of a dying local worker (Ray max_restarts)', intFlag(0), 5)
    .option('--until-done', 'exit 0 once no shard is queued or leased (batch mode)', false)
    .addOption(new Option('--allow-loopback', 'let workers fetch 127.0.0.0/8 and ::1 (tests and the demo only)').env('CAH_ALLOW_LOOPBACK').default(false))
    .option('--allow-private-sources', 'let workers read shard sources on private addresses (a private mirror)', false)
    .option('--url-retries <n>', 'retries of a transient download failure (timeout, reset, 429, 5xx)', intFlag(0), DEFAULT_WORKER_SETTINGS.urlRetries)
    .option('--lease-ms <ms>', 'shard lease length, renewed by heartbeats', intFlag(1000), DEFAULT_COORDINATOR_SETTINGS.leaseMs)
    .option('--heartbeat-timeout-ms <ms>', 'silence after which an actor is DEAD', intFlag(1000), DEFAULT_COORDINATOR_SETTINGS.heartbeatTimeoutMs)
    .option('--max-retries <n>', 'failures after which a shard is failed', intFlag(1), DEFAULT_COORDINATOR_SETTINGS.maxRetries)
    .option('--max-lease-age-ms <ms>', 'a lease this old comes back even while heartbeats renew it', intFlag(1000), DEFAULT_COORDINATOR_SETTINGS.maxLeaseAgeMs)
    .option('--retry-backoff-ms <ms>', 'a failed shard waits this long before its next attempt, doubling per failure (at most 60 s)', intFlag(0), DEFAULT_COORDINATOR_SETTINGS.retryBackoffMs)
    .option('--min-caption-length <n>', 'drop captions shorter than this', intFlag(0), DEFAULT_WORKER_SETTINGS.minCaptionLength)
    .option('--max-caption-length <n>', 'truncate captions longer than this', intFlag(1), DEFAULT_WORKER_SETTINGS.maxCaptionLength)
    .option('--image-size <px>', 'output image size', intFlag(8), DEFAULT_WORKER_SETTINGS.imageSize)
    .addOption(
      new Option('--resize-mode <mode>', 'how images are resized (img2dataset modes)')
        .choices(['border', 'keep_ratio', 'center_crop', 'no'])
        .default(DEFAULT_WORKER_SETTINGS.resizeMode),
    )
    .option('--min-image-size <px>', 'drop images whose smaller side is below this', intFlag(0), DEFAULT_WORKER_SETTINGS.minImageSize)
    .option('--max-in-flight <n>', 'downloads in flight per worker', intFlag(1), DEFAULT_WORKER_SETTINGS.maxInFlight)
    .option('--per-host-concurrency <n>', 'politeness: concurrent requests per host', intFlag(1), DEFAULT_WORKER_SETTINGS.perHostConcurrency)
    .option('--per-host-rps <n>', 'politeness: requests per second per host', numberFlag(0.01, 10_000), DEFAULT_WORKER_SETTINGS.perHostRps)
    .option('--download-timeout-ms <ms>', 'total time allowed for one image', intFlag(100), DEFAULT_WORKER_SETTINGS.downloadTimeoutMs)
    .option('--max-image-bytes <n>', 'abort downloads larger than this', intFlag(1024), DEFAULT_WORKER_SETTINGS.maxImageBytes)
    .option('--no-respect-opt-out', 'ignore X-Robots-Tag noai / noimageai (not recommended)')
    .option('--no-dashboard', 'JSON log lines instead of the terminal dashboard')
    .option('--metrics <addr>', 'serve Prometheus /metrics on HOST:PORT', metricsFlag)
    .option('--model <dir>', 'CLIP model directory (Hugging Face ONNX layout); without it every pair is kept')
    .option('--threshold <x>', 'keep pairs whose CLIP cosine similarity is at least this', numberFlag(-1, 1), 0.28)
    .option('--batch-size <n>', 'filter batch size', intFlag(1), 256)
    .option('--max-wait-ms <ms>', 'run a partial filter batch after this wait', intFlag(0), 50)
    .option('--languages <list>', 'keep captions detected as one of these languages (e.g. en,de)')
    .option('--scorer <name=model.onnx[:max]>', 'extra column from an ONNX head on the image embedding (e.g. a watermark detector); rows scoring above MAX are dropped; repeatable', (v: string, all: string[] = []) => [...all, v])
    .addOption(new Option('--execution-provider <ep>', 'where CLIP runs').choices(['auto', 'cpu', 'cuda']).default('auto'));
}

/** --metrics is checked while parsing, before anything starts (state lock, model, workers). */
function metricsFlag(value: string): string {
  try {
    parseListenAddress(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message.replace(/^--metrics expects /, 'expected ') : String(err));
  }
  return value;
}

export function settingsFromFlags(flags: GpuFlags): CoordinatorSettings {
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
      heartbeatIntervalMs: Math.max(200, Math.min(DEFAULT_WORKER_SETTINGS.heartbeatIntervalMs, Math.floor(flags.heartbeatTimeoutMs / 4))),
    },
  };
}

/** Runs the coordinator for `cah gpu` / `cah demo` and prints the outcome. */
export async function runGpu(flags: GpuFlags, stateDir: string, extra: { workerArgs?: string[]; title?: string } = {}): Promise<{ outcome: Outcome; result: RunResult }> {
  const store = Store.openInStateDir(stateDir);
  let releaseLock: (() => void) | null = null;
  try {
    try {
      releaseLock = store.lockForCoordinator();
    } catch (err) {
      if (err instanceof StateLockedError) throw new CliError(`${err.message} (${stateDir}): stop it first (q in its dashboard), or use another --state`);
      throw err;
    }
    if (store.shards.counts().queued + store.shards.counts().leased === 0 && flags.untilDone && store.shards.list().length === 0) {
      throw new CliError('no shards to process: add some with `cah shards add <file|url|CC-MAIN-YYYY-WW>`');
    }
    const workerToken = await ensureWorkerToken(stateDir);
    const interactive = flags.dashboard && process.stdout.isTTY === true;
    const logger = createLogger({ name: 'cah-gpu', ...(interactive ? { file: coordinatorLogPath(stateDir) } : {}) });
    for (const [flag, address] of [['--listen', flags.listen], ['--tls-listen', flags.tlsListen]] as const) {
      if (address !== undefined && !LISTEN_ADDRESS.test(address)) throw new CliError(`${flag} must be HOST:PORT (e.g. 127.0.0.1:7443 or [::1]:7443), got "${address}"`);
    }
    const exposed = exposedListenWarning(flags.listen);
    if (exposed) process.stderr.write(`cah: warning: ${exposed}\n`);
    const tlsListen = directTlsListen(flags, stateDir);
    const filter = await openFilter(flags, logger);
    const outDir = resolve(flags.out);
    if (flags.incremental && flags.overwrite) throw new CliError('--incremental and --overwrite exclude each other');
    let result: RunResult;
    try {
      result = await runCoordinator({
        store,
        outDir,
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
        outputMode: flags.overwrite ? 'overwrite' : flags.incremental ? 'incremental' : 'refuse',
        ...(extra.workerArgs ? { workerArgs: extra.workerArgs } : {}),
        workerLogDir: workerLogDir(stateDir),
        onStarted: async (running) => {
          await presentRun(running, { flags, stateDir, logger, interactive, title: extra.title ?? 'cah gpu' });
          if (flags.swarm) await superviseSwarm(running, { store, stateDir, workerToken, logger, replaceAfterMs: flags.replaceAfterMs });
        },
      });
    } catch (err) {
      if (err instanceof ListenError) throw new CliError(`${err.message} (another cah gpu running? choose another port with --listen)`);
      if (err instanceof OutputDirError) throw new CliError(err.message);
      throw err;
    }
    await filter.filter.close();
    if (result.exitReason === 'failed') {
      process.stderr.write(`cah: ${result.error ?? 'the run failed'}\n`);
      return { outcome: 'partial', result };
    }
    const failed = result.snapshot.shards.failed;
    return { outcome: failed > 0 ? 'partial' : 'ok', result };
  } finally {
    releaseLock?.();
    store.close();
  }
}

/**
 * Where to serve TLS for workers that dial in (`cah swarm up --direct HOST:PORT`): `--tls-listen`,
 * else every interface on the port of a recorded direct swarm. The certificate is the one `up`
 * generated and the workers pin.
 */
function directTlsListen(flags: GpuFlags, stateDir: string): (TlsIdentity & { address: string }) | null {
  let address = flags.tlsListen;
  if (!address && flags.swarm) {
    const direct = listSwarms(stateDir).find((s) => s.route.mode === 'direct' && s.servers.length > 0);
    if (direct?.route.mode === 'direct') address = `0.0.0.0:${direct.route.address.slice(direct.route.address.lastIndexOf(':') + 1)}`;
  }
  if (!address) return null;
  const { certPath, keyPath } = coordinatorCertPaths(stateDir);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    throw new CliError(`--tls-listen needs the coordinator certificate ${certPath}: \`cah swarm up N LOCATION --direct HOST:PORT\` makes it`);
  }
  return { address, certPem: readFileSync(certPath), keyPem: readFileSync(keyPath) };
}

/**
 * Holds the swarm recorded in the state directory for as long as the coordinator runs: reverse
 * tunnels to every server, swarm servers shown as actors, dead workers restarted and replaced.
 */
async function superviseSwarm(
  running: RunningCoordinator,
  opts: { store: Store; stateDir: string; workerToken: string; logger: Logger; replaceAfterMs: number },
): Promise<void> {
  const swarms = listSwarms(opts.stateDir).filter((s) => s.servers.length > 0);
  if (swarms.length === 0) return;
  const { store, logger } = opts;
  const supervisor = new SwarmSupervisor({
    stateDir: opts.stateDir,
    coordinatorPort: running.port,
    workerToken: opts.workerToken,
    replaceAfterMs: opts.replaceAfterMs,
    log: (obj, msg) => logger.info(obj, msg),
    isWorkerAlive: (server) => store.actors.get(server)?.state === 'ALIVE',
    onActorEvent: (event) => {
      const cause = event.cause ?? event.state;
      if (event.state === 'PENDING_CREATION') store.actors.expect(event.server, 'swarm', event.ip);
      else if (event.state === 'RESTARTING') store.actors.markRestarting(event.server, cause);
      else if (event.state === 'DEAD') store.actors.markDead(event.server, cause);
    },
  });
  await supervisor.start();
  logger.info({ swarms: swarms.map((s) => s.swarm), servers: swarms.reduce((n, s) => n + s.servers.length, 0) }, 'holding the swarm: reverse tunnels to its servers');
  running.coordinator.once('stopped', () => void supervisor.stop());
}

export function registerGpuCommand(program: Command): void {
  const cmd = program
    .command('gpu')
    .description('run the coordinator: lease shards to workers, filter pairs with CLIP, write the dataset');
  addCoordinatorOptions(cmd)
    .option('--no-swarm', 'do not open SSH tunnels to the swarm servers recorded in the state directory')
    .option('--tls-listen <addr>', 'also serve TLS here for --direct swarm workers (default: 0.0.0.0 on the port of a recorded direct swarm)')
    .option('--replace-after-ms <ms>', 'delete and recreate a swarm server whose worker stays DEAD this long', intFlag(0), 10 * 60_000)
    .option('--incremental', "--out holds another run's dataset: keep its files and number this run's shards after them")
    .option('--overwrite', "--out holds another run's dataset: delete its dataset files (shards, embeddings) first")
    .addHelpText(
      'after',
      `
Examples:
  cah gpu --local-workers 2 --until-done --out ./dataset
  cah gpu --model ~/.cache/cah/models/Xenova--clip-vit-base-patch32 --threshold 0.3 --metrics 127.0.0.1:9464
  cah gpu --model ./clip --languages en,de --scorer watermark=./watermark.onnx:0.8
  cah gpu --no-dashboard 2> coordinator.log    # JSON log lines (on stderr) every few seconds`,
    )
    .action(async (flags: GpuFlags) => {
      const stateDir = resolveStateDir(program.opts()['state']);
      reportOutcome((await runGpu(flags, stateDir)).outcome);
    });
}
