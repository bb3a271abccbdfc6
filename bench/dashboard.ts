import { createRequire } from 'node:module';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { HeldSnapshotSource, sampleSnapshot } from '../tests/support/sample-snapshot.js';
import type { SnapshotSource } from '../src/coordinator/snapshot-source.js';
import type { BenchResult } from './result.js';

const ACTORS = 100;
const UPDATES_PER_SEC = 10;
const MEASURE_MS = 10_000;
const BASELINE_MS = 5_000;
const BUDGET_PERCENT = 5;
/** Lets the JIT settle before measuring: the first frames compile ink's and our code. */
const WARM_UP_MS = 2_000;

/** A terminal-sized sink that counts what the dashboard writes. */
class FakeTerminal extends Writable {
  readonly columns = 80;
  readonly rows = 24;
  readonly isTTY = true;
  writes = 0;
  bytes = 0;
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.writes++;
    this.bytes += chunk.length;
    done();
  }
}

/** A coordinator stand-in: a fresh 100-actor snapshot, every figure changed, 10 times a second. */
function tickingSource(): { source: SnapshotSource; stop(): void } {
  let step = 0;
  const source = new HeldSnapshotSource(sampleSnapshot({ actors: ACTORS, step }));
  const timer = setInterval(() => source.set(sampleSnapshot({ actors: ACTORS, step: ++step })), 1000 / UPDATES_PER_SEC);
  return { source, stop: () => clearInterval(timer) };
}

/** % of one core used by this process while `ms` pass. */
async function cpuPercentDuring(ms: number): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(ms);
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100;
}

/**
 * Loads the dashboard as `cah` runs it: React's production build (the CLI sets NODE_ENV), and ink
 * outside its CI mode, which hides every frame but the last where a terminal gets them all.
 */
async function importRenderAsTheCliRunsIt(): Promise<typeof import('../src/dashboard/render.js')> {
  const saved = { CI: process.env['CI'], CONTINUOUS_INTEGRATION: process.env['CONTINUOUS_INTEGRATION'] };
  delete process.env['CI'];
  delete process.env['CONTINUOUS_INTEGRATION'];
  process.env['NODE_ENV'] ??= 'production';
  try {
    return await import('../src/dashboard/render.js');
  } finally {
    for (const [key, value] of Object.entries(saved)) if (value !== undefined) process.env[key] = value;
  }
}

/** Which React build actually runs (an earlier import may have loaded the development one). */
function reactBuild(): string {
  const cache = createRequire(import.meta.url).cache;
  const loaded = (file: string): boolean =>
    Object.entries(cache).some(([path, mod]) => path.endsWith(file) && mod?.loaded === true);
  return loaded('react.production.js') ? 'production' : loaded('react.development.js') ? 'development' : 'unknown';
}

/**
 * CPU cost of the dashboard: 10 snapshot updates a second with 100 actors, drawn at 80×24 into a
 * fake terminal for ~10 s, minus the same updates with nobody drawing them.
 */
export async function benchDashboard(): Promise<BenchResult> {
  const { DEFAULT_REFRESH_MS, startDashboard } = await importRenderAsTheCliRunsIt();

  const idle = tickingSource();
  await sleep(500);
  const baselinePercent = await cpuPercentDuring(BASELINE_MS);
  idle.stop();

  const ticking = tickingSource();
  const terminal = new FakeTerminal();
  const stdin = Object.assign(new PassThrough(), { isTTY: false });
  const dashboard = startDashboard(
    ticking.source,
    { pauseLeasing: () => undefined, drainAndQuit: () => undefined },
    { stdout: terminal as unknown as NodeJS.WriteStream, stdin: stdin as unknown as NodeJS.ReadStream },
  );
  await sleep(WARM_UP_MS);
  const writes0 = terminal.writes;
  const bytes0 = terminal.bytes;
  const withDashboard = await cpuPercentDuring(MEASURE_MS);
  const frames = terminal.writes - writes0;
  const kbPerSec = (terminal.bytes - bytes0) / 1024 / (MEASURE_MS / 1000);
  await dashboard.stop();
  ticking.stop();

  const dashboardPercent = Math.max(0.01, withDashboard - baselinePercent);
  return {
    name: `dashboard redraw cost (${ACTORS} actors, ${UPDATES_PER_SEC} updates/s, 80×24)`,
    value: dashboardPercent,
    unit: '% of one core',
    baseline: 'budget',
    baselineValue: BUDGET_PERCENT,
    ratio: BUDGET_PERCENT / dashboardPercent,
    target: `<= ${BUDGET_PERCENT}% (ratio = budget / ours, >= 1x)`,
    met: dashboardPercent <= BUDGET_PERCENT && frames > 0,
    notes:
      `redraw at most every ${DEFAULT_REFRESH_MS} ms (default), React ${reactBuild()} build; ${frames} terminal writes, ` +
      `${kbPerSec.toFixed(1)} KiB/s over ${MEASURE_MS / 1000} s; the snapshot updates alone: ${baselinePercent.toFixed(2)}%`,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await benchDashboard());
}
