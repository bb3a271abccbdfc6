import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RunResult } from '../coordinator/run.js';
import { DEFAULT_COORDINATOR_SETTINGS, DEFAULT_WORKER_SETTINGS } from '../coordinator/settings.js';
import { startFixtureWeb } from '../demo/fixture-web.js';
import { CahError } from '../errors.js';
import { Store } from '../store/state-file.js';
import { runGpu, type GpuOptions, type RunPresentation } from './gpu.js';

export interface DemoFlags {
  dir: string;
  workers: number;
  shards: number;
  pagesPerShard: number;
  seed: number;
  clip: boolean;
  dashboard: boolean;
}

/** Politeness and timeouts sized for a loopback web: fast enough to finish in well under 2 minutes. */
export function demoGpuOptions(opts: { out: string; workers: number; model?: string; dashboard: boolean }): GpuOptions {
  return {
    out: opts.out,
    listen: '127.0.0.1:0',
    localWorkers: opts.workers,
    maxRestarts: 3,
    untilDone: true,
    allowLoopback: true,
    leaseMs: DEFAULT_COORDINATOR_SETTINGS.leaseMs,
    heartbeatTimeoutMs: 10_000,
    maxRetries: DEFAULT_COORDINATOR_SETTINGS.maxRetries,
    minCaptionLength: DEFAULT_WORKER_SETTINGS.minCaptionLength,
    maxCaptionLength: DEFAULT_WORKER_SETTINGS.maxCaptionLength,
    imageSize: DEFAULT_WORKER_SETTINGS.imageSize,
    resizeMode: DEFAULT_WORKER_SETTINGS.resizeMode,
    minImageSize: 0,
    maxInFlight: 64,
    perHostConcurrency: 8,
    perHostRps: 200,
    downloadTimeoutMs: 3000,
    maxImageBytes: 2_000_000,
    respectOptOut: true,
    dashboard: opts.dashboard,
    swarm: false,
    replaceAfterMs: 0,
    threshold: 0.28,
    batchSize: 64,
    maxWaitMs: 50,
    executionProvider: 'auto',
    ...(opts.model ? { model: opts.model } : {}),
  };
}

/** --dir holds something that is not an earlier demo's: nothing was deleted. */
export class DemoDirError extends CahError {
  constructor(message: string) {
    super('CAH_DEMO_DIR', message);
  }
}

/** How a demo went: the run, what the demo built, and where everything is. */
export interface DemoResult {
  result: RunResult;
  seconds: number;
  /** The demo CLIP model's directory; none: no filter. */
  model: string | null;
  out: string;
  stateDir: string;
  groundTruth: string;
}

/** Marks a directory as a demo's: only such a directory (or an empty one) is emptied by the next demo. */
export const DEMO_MARKER = '.cah-demo';

/**
 * `npm start`: everything on loopback, no internet: the fixture web, synthetic shards, the demo
 * model, then the same run as `cah gpu`. The caller shows the run (`show`, given the state
 * directory), hears what the demo builds (`say`) and prints the summary.
 */
export async function runDemo(
  flags: DemoFlags,
  show: (stateDir: string) => () => RunPresentation,
  extra: { workerLogDir?: (stateDir: string) => string; say?: (line: string) => void } = {},
): Promise<DemoResult> {
  const say = extra.say ?? ((): void => undefined);
  const dir = resolve(flags.dir);
  const entries = await readdir(dir).catch(() => null);
  if (entries && entries.length > 0 && !entries.includes(DEMO_MARKER)) {
    throw new DemoDirError(`--dir ${dir} is not empty and not an earlier demo's directory: nothing was deleted; choose a new or empty directory`);
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, DEMO_MARKER), 'written by cah demo: the next demo with this --dir empties this directory\n');
  const stateDir = join(dir, 'state');
  const out = join(dir, 'dataset');
  await mkdir(stateDir, { recursive: true });
  const started = Date.now();
  say(`starting the fixture web and writing ${flags.shards} synthetic WAT shards…`);
  const web = await startFixtureWeb(join(dir, 'web'), {
    seed: flags.seed,
    shards: flags.shards,
    pagesPerShard: flags.pagesPerShard,
    hangMs: 6000,
    maxImageBytes: 2_000_000,
  });
  // What the fixture web served, so that anyone can check the dataset against it.
  const groundTruth = join(dir, 'ground-truth.json');
  await writeFile(groundTruth, JSON.stringify(web.groundTruth, null, 1));
  try {
    let model: string | null = null;
    if (flags.clip) {
      const { buildDemoModel } = await import('../model/demo-model.js');
      model = join(dir, 'demo-clip-model');
      await buildDemoModel(model);
      say(`built the DEMO CLIP model in ${model}: constructed for this synthetic web's colours, not a real CLIP`);
    }
    const store = Store.openInStateDir(stateDir);
    store.shards.add(web.shardPaths);
    store.close();
    const options = demoGpuOptions({ out, workers: flags.workers, dashboard: flags.dashboard, ...(model ? { model } : {}) });
    const result = await runGpu(options, stateDir, show(stateDir), extra.workerLogDir ? { workerLogDir: extra.workerLogDir(stateDir) } : {});
    return { result, seconds: (Date.now() - started) / 1000, model, out, stateDir, groundTruth };
  } finally {
    await web.close();
  }
}
