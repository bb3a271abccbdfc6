import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parquetReadObjects } from 'hyparquet';
import tar from 'tar-stream';
import { ensureWorkerToken } from '../../src/coordinator/credentials.js';
import { startFixtureWeb, type GroundTruthEntry } from '../../src/demo/fixture-web.js';
import { Store } from '../../src/store/state-file.js';
import { cliMain } from './cli.js';
import { TcpProxy } from './tcp-proxy.js';

/** The exactness check of a chaos run: every figure must be 0. */
export interface ChaosReport {
  lost: number;
  duplicated: number;
  unreadable: number;
  hung: number;
  faults: Record<string, number>;
  /** What went wrong, one line each (empty when exact). */
  details: string[];
  keys: number;
  seconds: number;
}

export interface ChaosOptions {
  root: string;
  seed: number;
  shards: number;
  pagesPerShard: number;
  workers: number;
  /** suite: the fixed fault sequence of `npm test`; random: faults at random until `untilMs` (epoch ms). */
  plan: { kind: 'suite' } | { kind: 'random'; untilMs: number };
  /** A run still going at this age is reported hung. */
  deadlineMs: number;
  log?: (line: string) => void;
}

export const CHAOS_TIMING = { leaseMs: 5000, heartbeatTimeoutMs: 4000 } as const;

const GPU_FLAGS = [
  '--local-workers', '0', '--until-done', '--allow-loopback', '--no-dashboard', '--listen', '127.0.0.1:0',
  '--lease-ms', String(CHAOS_TIMING.leaseMs), '--heartbeat-timeout-ms', String(CHAOS_TIMING.heartbeatTimeoutMs),
  '--max-retries', '1000', '--retry-backoff-ms', '100', '--download-timeout-ms', '1000',
  '--per-host-rps', '500', '--per-host-concurrency', '16', '--max-image-bytes', '2000000',
];

/** A small seeded PRNG: the same seed picks the same victims. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * Runs the whole pipeline on the fixture web (a `cah gpu` coordinator, `cah worker` processes
 * dialing it through a TCP proxy) while faults hit it: worker kills, a coordinator killed in the
 * middle of publishing a shard (and at random in the random plan), connection cuts shorter and
 * longer than the heartbeat timeout, a worker stopped longer than its lease. Then checks the
 * dataset against what the web served.
 */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const random = prng(opts.seed);
  const faults: Record<string, number> = { worker_kills: 0, coordinator_kills: 0, cuts: 0, long_cuts: 0, stops: 0 };
  const web = await startFixtureWeb(join(opts.root, 'web'), { seed: opts.seed, shards: opts.shards, pagesPerShard: opts.pagesPerShard, hangMs: 1500, maxImageBytes: 2_000_000 });
  const state = join(opts.root, 'state');
  const out = join(opts.root, 'out');
  const store = Store.openInStateDir(state);
  store.shards.add(web.shardPaths);
  store.close();
  const token = await ensureWorkerToken(state);
  const proxy = new TcpProxy(1);
  await proxy.start();

  let finished = false;
  let finalCode: number | null = null;
  let coordinator: ChildProcess | null = null;
  let coordinatorReady: Promise<void> = Promise.resolve();
  let leasedOnce = false;
  const startCoordinator = (env: Record<string, string>): void => {
    const child = spawn(process.execPath, [cliMain, '--state', state, 'gpu', ...GPU_FLAGS, '--out', out], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    coordinator = child;
    let buffered = '';
    coordinatorReady = new Promise<void>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.startsWith('{')) {
            if (line.trim()) log(`coordinator: ${line}`);
            continue;
          }
          const entry = JSON.parse(line) as { msg: string; port?: number; level: number };
          if (entry.level >= 40) log(`coordinator: ${line}`);
          if (entry.msg === 'coordinator listening' && entry.port) {
            proxy.retarget(entry.port);
            resolve();
          }
          if (entry.msg === 'shard leased') leasedOnce = true;
        }
      });
      child.once('exit', () => resolve());
    });
    child.once('exit', (code, signal) => {
      if (coordinator === child) coordinator = null;
      if (code === 0 || code === 1) {
        finished = true;
        finalCode = code;
        return;
      }
      if (signal === 'SIGKILL') faults['coordinator_kills']!++;
      log(`coordinator exited (${signal ?? code}): restarting`);
      if (!finished) startCoordinator({});
    });
  };

  const workers: { id: string; child: ChildProcess | null; done: boolean; since: number }[] = Array.from({ length: opts.workers }, (_, i) => ({ id: `chaos-${i + 1}`, child: null, done: false, since: 0 }));
  const startWorker = (slot: (typeof workers)[number]): void => {
    const child = spawn(process.execPath, [cliMain, 'worker', '--coordinator', `127.0.0.1:${proxy.port}`, '--actor-id', slot.id, '--exit-when-drained'], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', CAH_WORKER_TOKEN: token, CAH_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    slot.child = child;
    slot.since = Date.now();
    child.once('exit', (code) => {
      slot.child = null;
      if (code === 0) slot.done = true;
      else if (!finished) setTimeout(() => !finished && startWorker(slot), 200);
    });
  };
  /** A worker that has had time to register and work (killing one that is still starting proves little). */
  const liveWorker = async (): Promise<ChildProcess | null> => {
    for (;;) {
      const live = workers.filter((w) => w.child?.pid && Date.now() - w.since > 2500);
      if (live.length) return live[Math.floor(random() * live.length)]!.child;
      if (finished || workers.every((w) => w.done)) return null;
      await sleep(100);
    }
  };
  const killWorker = async (): Promise<void> => {
    const child = await liveWorker();
    if (child && !finished) {
      child.kill('SIGKILL');
      faults['worker_kills']!++;
    }
  };
  const stopWorker = async (): Promise<void> => {
    const child = await liveWorker();
    if (!child || finished) return;
    child.kill('SIGSTOP');
    faults['stops']!++;
    await sleep(CHAOS_TIMING.leaseMs + 1000);
    child.kill('SIGCONT');
  };
  const cut = async (): Promise<void> => {
    // Shorter than the heartbeat timeout (with a heartbeat interval to spare): no actor is declared dead.
    proxy.reset(2000 + Math.floor(random() * 500));
    faults['cuts']!++;
    await sleep(3000);
  };
  const longCut = async (): Promise<void> => {
    faults['long_cuts']!++;
    await proxy.blackhole(CHAOS_TIMING.heartbeatTimeoutMs + 1500);
  };

  // The first coordinator dies in the middle of publishing its first shard (after one rename).
  startCoordinator({ CAH_FAULT_CRASH_PUBLISH: '1' });
  await coordinatorReady;
  for (const slot of workers) startWorker(slot);
  const deadline = started + opts.deadlineMs;
  const pause = (ms: number): Promise<unknown> => sleep(ms);
  try {
    while (!leasedOnce && !finished && Date.now() < deadline) await pause(100);
    if (opts.plan.kind === 'suite') {
      // The coordinator's restart requeues every lease: the other faults come after it, or it would mask them.
      while (faults['coordinator_kills'] === 0 && !finished && Date.now() < deadline) await pause(100);
      await coordinatorReady;
      // Kills first (they also slow the run down: a restarted worker waits until its old self is declared dead).
      // The short cut comes last: nothing after it may rescue a lease the cut left stuck.
      const steps: (() => void | Promise<void>)[] = [...Array.from({ length: 10 }, () => killWorker), stopWorker, longCut, cut];
      for (const step of steps) {
        if (finished) break;
        await step();
        await pause(800);
      }
    } else {
      const until = opts.plan.untilMs;
      const choices: (() => void | Promise<void>)[] = [killWorker, killWorker, killWorker, cut, longCut, stopWorker, () => {
        if (coordinator && !finished) coordinator.kill('SIGKILL');
      }];
      while (!finished && Date.now() < until && Date.now() < deadline) {
        await choices[Math.floor(random() * choices.length)]!();
        await pause(800 + random() * 2000);
      }
    }
    while (!finished && Date.now() < deadline) await pause(200);
  } finally {
    finished = true;
    (coordinator as ChildProcess | null)?.kill('SIGKILL');
    for (const slot of workers) slot.child?.kill('SIGKILL');
    await proxy.close();
    await web.close();
  }
  const hung = finalCode === null ? 1 : 0;
  const report = await verifyDataset(out, web.groundTruth, state);
  return { ...report, hung, faults, keys: web.groundTruth.length, seconds: (Date.now() - started) / 1000, details: [...(hung ? ['the run did not finish before its deadline'] : []), ...report.details] };
}

/** Reads the dataset back with independent readers (hyparquet, tar-stream) and compares it with the ground truth. */
export async function verifyDataset(out: string, truth: GroundTruthEntry[], state: string): Promise<Pick<ChaosReport, 'lost' | 'duplicated' | 'unreadable' | 'details'>> {
  const details: string[] = [];
  let unreadable = 0;
  const seen = new Map<string, number>();
  const names = existsSync(out) ? readdirSync(out) : [];
  const committed = names.filter((n) => /^\d{5,}_stats\.json$/.test(n)).map((n) => n.slice(0, -'_stats.json'.length));
  const orphans = names.filter((n) => /^\d{5,}\.(tar|parquet)$/.test(n) && !committed.includes(n.slice(0, n.indexOf('.'))));
  if (orphans.length) {
    unreadable += orphans.length;
    details.push(`files without a commit marker: ${orphans.join(', ')}`);
  }
  for (const shard of committed) {
    try {
      const stats = JSON.parse(readFileSync(join(out, `${shard}_stats.json`), 'utf8')) as { count: number; successes: number };
      const bytes = readFileSync(join(out, `${shard}.parquet`));
      const rows = (await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer })) as { key: string; status: string }[];
      const jpgs = (await tarEntries(join(out, `${shard}.tar`))).filter((n) => n.endsWith('.jpg')).map((n) => n.slice(0, -4)).sort();
      const successes = rows.filter((r) => r.status === 'success').map((r) => r.key).sort();
      if (stats.count !== rows.length || stats.successes !== successes.length || JSON.stringify(jpgs) !== JSON.stringify(successes)) {
        unreadable++;
        details.push(`shard ${shard}: stats say ${stats.count} rows/${stats.successes} kept, parquet has ${rows.length}/${successes.length}, tar ${jpgs.length} images`);
      }
      for (const row of rows) seen.set(row.key, (seen.get(row.key) ?? 0) + 1);
    } catch (err) {
      unreadable++;
      details.push(`shard ${shard} unreadable: ${(err as Error).message}`);
    }
  }
  const expected = new Set(truth.map((t) => t.key));
  const lostKeys = truth.map((t) => t.key).filter((k) => !seen.has(k));
  let duplicated = 0;
  for (const [key, n] of seen) {
    if (n > 1) duplicated += n - 1;
    if (!expected.has(key)) duplicated++;
  }
  if (lostKeys.length) details.push(`lost ${lostKeys.length} keys, e.g. ${lostKeys.slice(0, 5).join(', ')}`);
  if (duplicated) details.push(`${duplicated} duplicated or unexpected rows`);
  if (existsSync(join(state, 'cah.sqlite'))) {
    const store = Store.openInStateDir(state, { readonly: true });
    const counts = store.shards.counts();
    store.close();
    if (counts.failed > 0 || counts.queued > 0 || counts.leased > 0) details.push(`shards not done: ${JSON.stringify(counts)}`);
  }
  return { lost: lostKeys.length, duplicated, unreadable, details };
}

async function tarEntries(path: string): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      names.push(header.name);
      stream.on('end', next);
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(readFileSync(path));
  await done;
  return names;
}

/** The last line of a chaos run: the four figures that must all be 0. */
export function exactnessLine(r: Pick<ChaosReport, 'lost' | 'duplicated' | 'unreadable' | 'hung'>): string {
  return `lost=${r.lost} duplicated=${r.duplicated} unreadable=${r.unreadable} hung=${r.hung}`;
}
