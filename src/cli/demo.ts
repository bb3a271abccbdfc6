import type { Command } from 'commander';
import { runDemo } from '../demo/run-demo.js';
import { reportOutcome } from './errors.js';
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
      reportOutcome(await runDemo(flags));
    });
}
