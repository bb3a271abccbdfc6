import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CliError, type Outcome } from '../cli/errors.js';
import { runGpu, type GpuFlags } from '../cli/gpu.js';
import { DEFAULT_COORDINATOR_SETTINGS, DEFAULT_WORKER_SETTINGS } from '../coordinator/settings.js';
import { Store } from '../store/store.js';
import { startFixtureWeb } from './fixture-web.js';

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
export function demoGpuFlags(opts: { out: string; workers: number; model?: string; dashboard: boolean }): GpuFlags {
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

/** Marks a directory as a demo's: only such a directory (or an empty one) is emptied by the next demo. */
export const DEMO_MARKER = '.cah-demo';

/** `npm start`: everything on loopback, no internet; prints a summary and where the dataset is. */
export async function runDemo(flags: DemoFlags): Promise<Outcome> {
  const dir = resolve(flags.dir);
  const entries = await readdir(dir).catch(() => null);
  if (entries && entries.length > 0 && !entries.includes(DEMO_MARKER)) {
    throw new CliError(`--dir ${dir} is not empty and not an earlier demo's directory: nothing was deleted; choose a new or empty directory`);
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, DEMO_MARKER), 'written by cah demo: the next demo with this --dir empties this directory\n');
  const stateDir = join(dir, 'state');
  const out = join(dir, 'dataset');
  await mkdir(stateDir, { recursive: true });
  const started = Date.now();
  process.stderr.write(`cah demo: starting the fixture web and writing ${flags.shards} synthetic WAT shards…\n`);
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
    let model: string | undefined;
    if (flags.clip) {
      const { buildDemoModel } = await import('../filter/demo-model.js');
      model = join(dir, 'demo-clip-model');
      await buildDemoModel(model);
      process.stderr.write(`cah demo: built the DEMO CLIP model in ${model}: constructed for this synthetic web's colours, not a real CLIP\n`);
    }
    const store = Store.openInStateDir(stateDir);
    store.shards.add(web.shardPaths);
    store.close();
    const gpuFlags = demoGpuFlags({ out, workers: flags.workers, dashboard: flags.dashboard, ...(model ? { model } : {}) });
    const { outcome, result } = await runGpu(gpuFlags, stateDir, { title: 'cah demo' });
    const s = result.snapshot;
    const secs = (Date.now() - started) / 1000;
    const lines = [
      '',
      `cah demo finished in ${secs.toFixed(1)} s (${result.exitReason})`,
      `  shards      ${s.shards.done} done, ${s.shards.failed} failed of ${s.shards.total}`,
      `  candidates  ${s.totals.extracted} (${s.totals.duplicates} duplicates)`,
      `  downloaded  ${s.totals.downloaded}`,
      `  kept        ${s.totals.kept}${model ? ` (demo CLIP model, threshold 0.28; ${s.totals.filteredOut} filtered out)` : ' (no CLIP filter)'}`,
      `  failed      ${s.totals.failed}`,
      `  pairs/s     ${(s.totals.kept / secs).toFixed(1)} kept, ${(s.totals.extracted / secs).toFixed(1)} candidates`,
      '  errors by kind:',
      ...s.topErrors.map((e) => `    ${String(e.count).padStart(5)}  ${e.message}`),
      `  dataset     ${out}  (webdataset .tar + .parquet + _stats.json per shard)`,
      `  state       ${stateDir}  (cah --state ${stateDir} status)`,
      `  served      ${groundTruth}  (what the fixture web served: key, caption, fault, matched)`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    return outcome;
  } finally {
    await web.close();
  }
}
