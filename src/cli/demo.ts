import type { Command } from 'commander';
import { runDemo, type DemoResult } from '../app/demo.js';
import type { RunPresentation } from '../app/gpu.js';
import { reportOutcome } from './errors.js';
import { explainRunError, presentation, runOutcome } from './gpu.js';
import { workerLogDir } from './present.js';
import { intFlag } from './state.js';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the whole pipeline on this machine: a fixture web on loopback, synthetic WAT shards, a coordinator with local workers, the demo CLIP model')
    .option('--dir <dir>', 'where the demo writes its state, shards and dataset (a new or empty directory, or an earlier demo\'s, which is emptied)', './demo-output')
    .option('--workers <n>', 'local worker actors', intFlag(1), 2)
    .option('--shards <n>', 'synthetic WAT shards', intFlag(1), 4)
    .option('--pages-per-shard <n>', 'pages per shard', intFlag(1), 30)
    .option('--seed <n>', 'fixture web seed', intFlag(0), 42)
    .option('--no-clip', 'keep every downloaded pair (no CLIP filter)')
    .option('--no-dashboard', 'JSON log lines instead of the terminal dashboard')
    .addHelpText(
      'after',
      `
Examples:
  npm start                       # same as: cah demo
  cah demo --workers 4 --shards 8 --no-dashboard`,
    )
    .action(async (flags: { dir: string; workers: number; shards: number; pagesPerShard: number; seed: number; clip: boolean; dashboard: boolean }) => {
      const show = (stateDir: string): (() => RunPresentation) => presentation({ dashboard: flags.dashboard, listen: '127.0.0.1:0' }, stateDir, 'cah demo');
      const say = (line: string): void => void process.stderr.write(`cah demo: ${line}\n`);
      const demo = await runDemo(flags, show, { workerLogDir, say }).catch((err: unknown) => {
        throw explainRunError(err);
      });
      const outcome = runOutcome(demo.result);
      process.stdout.write(summary(demo));
      reportOutcome(outcome);
    });
}

/** What the demo made, where it is, and how to check it. */
function summary(demo: DemoResult): string {
  const { result, seconds: secs, model, out, stateDir, groundTruth } = demo;
  const s = result.snapshot;
  return [
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
  ].join('\n');
}
