import { InvalidArgumentError, Option, type Command } from 'commander';
import { dirname } from 'node:path';
import { runGpu, type GpuOptions, type RunPresentation } from '../app/gpu.js';
import { parseListenAddress } from '../coordinator/metrics.js';
import type { RunResult } from '../coordinator/run.js';
import { ListenError } from '../coordinator/service.js';
import { DEFAULT_COORDINATOR_SETTINGS, DEFAULT_WORKER_SETTINGS } from '../coordinator/settings.js';
import { StateLockedError } from '../store/coordinator-lock.js';
import { CliError, reportOutcome, type Outcome } from './errors.js';
import { coordinatorLogPath, presentRun, workerLogDir } from './present.js';
import { createLogger, exposedListenWarning, intFlag, numberFlag, resolveStateDir } from './state.js';

const LISTEN_ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):\d{1,5}$/;

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
    .option('--decode-timeout-s <s>', 'per-image decode + resize time limit on workers and in the filter: a slower image (a CPU bomb) fails that sample (1–3600, sharp\'s range)', intFlag(1, 3600), DEFAULT_WORKER_SETTINGS.decodeTimeoutS)
    .option('--extract-exif', "fill the exif column with each image's EXIF tags (JSON; camera, exposure, GPS when present)", false)
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

/** How `cah gpu` and `cah demo` show a run: the dashboard on a TTY (logging to a file), JSON log lines otherwise. */
export function presentation(flags: { dashboard: boolean; listen: string; metrics?: string }, stateDir: string, title: string): () => RunPresentation {
  return () => {
    const interactive = flags.dashboard && process.stdout.isTTY === true;
    const logger = createLogger({ name: 'cah-gpu', ...(interactive ? { file: coordinatorLogPath(stateDir) } : {}) });
    return { logger, present: (running) => presentRun(running, { flags, stateDir, logger, interactive, title }) };
  };
}

/** Flag mistakes the parser cannot see alone, said before anything starts. */
export function checkGpuFlags(flags: GpuOptions): void {
  for (const [flag, address] of [['--listen', flags.listen], ['--tls-listen', flags.tlsListen]] as const) {
    if (address !== undefined && !LISTEN_ADDRESS.test(address)) throw new CliError(`${flag} must be HOST:PORT (e.g. 127.0.0.1:7443 or [::1]:7443), got "${address}"`);
  }
  if (flags.incremental && flags.overwrite) throw new CliError('--incremental and --overwrite exclude each other');
  const exposed = exposedListenWarning(flags.listen);
  if (exposed) process.stderr.write(`cah: warning: ${exposed}\n`);
}

/** A run's errors that need the CLI's words (which flag to change, what to stop first). */
export function explainRunError(err: unknown): unknown {
  if (err instanceof StateLockedError) return new CliError(`${err.message} (${dirname(err.lockPath)}): stop it first (q in its dashboard), or use another --state`);
  if (err instanceof ListenError) return new CliError(`${err.message} (another cah gpu running? choose another port with --listen)`);
  return err;
}

/** A run that failed, or failed some shards, is a partial outcome; a failed run says why. */
export function runOutcome(result: RunResult): Outcome {
  if (result.exitReason === 'failed') {
    process.stderr.write(`cah: ${result.error ?? 'the run failed'}\n`);
    return 'partial';
  }
  return result.snapshot.shards.failed > 0 ? 'partial' : 'ok';
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
    .action(async (flags: GpuOptions) => {
      const stateDir = resolveStateDir(program.opts()['state']);
      checkGpuFlags(flags);
      const result = await runGpu(flags, stateDir, presentation(flags, stateDir, 'cah gpu'), { workerLogDir: workerLogDir(stateDir) }).catch((err: unknown) => {
        throw explainRunError(err);
      });
      reportOutcome(runOutcome(result));
    });
}
