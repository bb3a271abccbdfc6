import { writeFile } from 'node:fs/promises';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './result.js';

/**
 * `npm run bench`: every figure is a ratio against a baseline measured in the same run on the same
 * machine. Prints a table and writes bench/RESULTS.md. One failing bench does not stop the others.
 */
const BENCHES: { name: string; run: () => Promise<BenchResult | BenchResult[]> }[] = [
  { name: 'extract', run: async () => (await import('./extract.js')).benchExtract() },
  { name: 'resize', run: async () => (await import('./images.js')).benchResize() },
  { name: 'download', run: async () => (await import('./images.js')).benchDownload() },
  { name: 'rss', run: async () => (await import('./images.js')).benchRss() },
  { name: 'grpc', run: async () => (await import('./grpc.js')).benchGrpc() },
  { name: 'clip', run: async () => (await import('./clip.js')).benchClip() },
  { name: 'dashboard', run: async () => (await import('./dashboard.js')).benchDashboard() },
  { name: 'event-loop', run: async () => (await import('./event-loop.js')).benchEventLoop() },
];

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}

const only = process.argv.slice(2);
const results: BenchResult[] = [];
const failures: string[] = [];
for (const bench of BENCHES) {
  if (only.length > 0 && !only.includes(bench.name)) continue;
  process.stderr.write(`bench: ${bench.name}…\n`);
  try {
    const r = await bench.run();
    results.push(...(Array.isArray(r) ? r : [r]));
  } catch (err) {
    failures.push(`${bench.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}`;
const rows = results.map(
  (r) =>
    `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline}: ${fmt(r.baselineValue)} | **${r.ratio.toFixed(2)}×** | ${r.target} | ${r.met ? 'met' : 'NOT met'} | ${r.notes} |`,
);
const table = [
  '| figure | ours | baseline (same run) | ratio | target | | notes |',
  '|---|---|---|---|---|---|---|',
  ...rows,
].join('\n');
const md = [
  '# Benchmark results',
  '',
  `Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}. Command: \`npm run bench\`.`,
  '',
  table,
  '',
  ...(failures.length ? ['Benches that did not run:', '', ...failures.map((f) => `- ${f}`), ''] : []),
].join('\n');
process.stdout.write(table + '\n');
if (failures.length) process.stdout.write(failures.map((f) => `failed: ${f}`).join('\n') + '\n');
if (only.length === 0) {
  await writeFile(join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'RESULTS.md'), md + '\n');
  process.stdout.write('wrote bench/RESULTS.md\n');
}
