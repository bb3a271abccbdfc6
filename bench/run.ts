import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './result.js';

/**
 * `npm run bench`: every figure is a ratio against a baseline measured in the same run on the same
 * machine. Prints a table and writes bench/RESULTS.md (a partial run updates its own rows). One
 * failing bench does not stop the others.
 */
const BENCHES: { name: string; run: () => Promise<BenchResult | BenchResult[]> }[] = [
  { name: 'extract', run: async () => (await import('./extract.js')).benchExtract() },
  { name: 'resize', run: async () => (await import('./images.js')).benchResize() },
  { name: 'download', run: async () => (await import('./images.js')).benchDownload() },
  { name: 'rss', run: async () => (await import('./images.js')).benchRss() },
  { name: 'grpc', run: async () => (await import('./grpc.js')).benchGrpc() },
  { name: 'grpc-cpu', run: async () => (await import('./grpc-cpu.js')).benchGrpcCpu() },
  { name: 'wan', run: async () => (await import('./wan.js')).benchWan() },
  { name: 'clip', run: async () => (await import('./clip.js')).benchClip() },
  { name: 'dashboard', run: async () => (await import('./dashboard.js')).benchDashboard() },
  { name: 'load', run: async () => (await import('./load.js')).benchLoad() },
  { name: 'parquet', run: async () => (await import('./parquet.js')).benchParquet() },
  { name: 'store', run: async () => (await import('./store.js')).benchStore() },
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

const load = loadavg().map((l) => l.toFixed(1)).join(' / ');
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}`;
const rowOf = (r: BenchResult): string =>
  `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline}: ${fmt(r.baselineValue)} | **${r.ratio.toFixed(2)}×** | ${r.target} | ${r.met ? 'met' : 'NOT met'} | ${r.notes} |`;
const rows = results.map(rowOf);
const header = ['| figure | ours | baseline (same run) | ratio | target | | notes |', '|---|---|---|---|---|---|---|'];
const resultsFile = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'RESULTS.md');
const today = new Date().toISOString().slice(0, 10);

/**
 * A partial run (`npm run bench -- wan extract`) replaces the rows of the figures it measured in
 * bench/RESULTS.md and keeps the others (and `Note` lines, `Note: …` or `Note (…): …`), with a line saying what was rerun, when,
 * and under what load.
 */
function merged(previous: string): string {
  const names = new Set(results.map((r) => r.name));
  const kept = previous.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| figure') && !names.has(line.split(' | ')[0]!.slice(2)));
  const notes = previous.split('\n').filter((line) => line.startsWith('Rerun: ') || line.startsWith('Note: ') || line.startsWith('Note ('));
  return [
    '# Benchmark results',
    '',
    previous.split('\n').find((line) => line.startsWith('Machine: ')) ?? `Machine: ${machine}.`,
    '',
    [...header, ...kept, ...rows].join('\n'),
    '',
    ...notes,
    `Rerun: \`npm run bench -- ${only.join(' ')}\` on ${today}, load average ${load} (1/5/15 min) on ${machine}.`,
    '',
    ...(failures.length ? ['Benches that did not run:', '', ...failures.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
}

const md = [
  '# Benchmark results',
  '',
  `Machine: ${machine}. Date: ${today}, load average ${load} (1/5/15 min). Command: \`npm run bench\`.`,
  '',
  [...header, ...rows].join('\n'),
  '',
  ...(failures.length ? ['Benches that did not run:', '', ...failures.map((f) => `- ${f}`), ''] : []),
].join('\n');
process.stdout.write([...header, ...rows].join('\n') + '\n');
if (failures.length) process.stdout.write(failures.map((f) => `failed: ${f}`).join('\n') + '\n');
if (only.length === 0) await writeFile(resultsFile, md + '\n');
else if (results.length > 0) await writeFile(resultsFile, merged(await readFile(resultsFile, 'utf8').catch(() => '')) + '\n');
process.stdout.write('wrote bench/RESULTS.md\n');
