import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactnessLine, runChaos, type ChaosReport } from '../tests/support/chaos.js';

/**
 * `npm run chaos -- --minutes N`: the chaos suite's faults at random for N minutes, run after run
 * on the fixture web; each run's dataset is checked against what the web served. The last line
 * is the exactness check; exit 0 only when every figure is 0.
 */
const args = process.argv.slice(2);
const at = args.indexOf('--minutes');
const minutes = at >= 0 ? Number(args[at + 1]) : 1;
if (!Number.isFinite(minutes) || minutes <= 0) {
  process.stderr.write('usage: npm run chaos -- --minutes N\n');
  process.exit(2);
}
const until = Date.now() + minutes * 60_000;
const total = { lost: 0, duplicated: 0, unreadable: 0, hung: 0 };
const faults: Record<string, number> = {};
let runs = 0;
while (Date.now() < until) {
  const root = mkdtempSync(join(tmpdir(), 'cah-chaos-'));
  const seed = 1000 + runs;
  let report: ChaosReport;
  try {
    report = await runChaos({ root, seed, shards: 12, pagesPerShard: 10, workers: 3, plan: { kind: 'random', untilMs: until }, deadlineMs: Math.max(180_000, until - Date.now() + 120_000), log: (l) => process.stderr.write(`${l}\n`) });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  runs++;
  for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += report[k];
  for (const [k, v] of Object.entries(report.faults)) faults[k] = (faults[k] ?? 0) + v;
  process.stdout.write(`run ${runs} (seed ${seed}, ${report.keys} keys, ${report.seconds.toFixed(0)} s): ${exactnessLine(report)} faults ${JSON.stringify(report.faults)}\n`);
  for (const line of report.details) process.stdout.write(`  ${line}\n`);
}
process.stdout.write(`chaos: ${runs} runs in ${minutes} min, faults ${JSON.stringify(faults)}\n`);
process.stdout.write(`${exactnessLine(total)}\n`);
process.exit(total.lost + total.duplicated + total.unreadable + total.hung === 0 ? 0 : 1);
