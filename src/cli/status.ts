import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SnapshotBuilder, type FilterStageView } from '../coordinator/snapshot-builder.js';
import type { CoordinatorSnapshot } from '../coordinator/snapshot.js';
import { closingLine, formatStatusText, snapshotSummary } from '../dashboard/log-lines.js';
import { BATCH_SECONDS_BOUNDS, SIMILARITY_BOUNDS, emptyHistogram } from '../filter/histogram.js';
import { STATE_FILE, Store } from '../store/state-file.js';
import { CliError } from './errors.js';
import { resolveStateDir } from './state.js';

/** What a running coordinator writes every few seconds for `cah status` in another terminal. */
export const LIVE_STATUS_FILE = 'live-status.json';

const NO_RUN = 'none';

/** A live-status file older than this means the coordinator is not up. */
const LIVE_FRESH_MS = 10_000;

const IDLE_FILTER: FilterStageView = {
  filterName: 'not running',
  provider: 'none',
  queueDepth: 0,
  capacity: 0,
  stats: () => ({
    imagesPerSec: 0,
    idleFraction: 1,
    lastBatchSize: 0,
    batches: 0,
    processed: 0,
    batchSeconds: emptyHistogram(BATCH_SECONDS_BOUNDS),
    similarity: emptyHistogram(SIMILARITY_BOUNDS),
  }),
};

/**
 * The figures of `cah status`: shards, actors, totals and errors from the SQLite file (the truth),
 * plus the filter and throughput figures of the running coordinator when its live file is fresh.
 */
export async function statusSnapshot(dbPath: string): Promise<{ snapshot: CoordinatorSnapshot; coordinatorUp: boolean }> {
  if (!existsSync(dbPath)) throw new CliError(`no state file at ${dbPath}: run \`cah shards add\` or pass --db / --state`);
  const store = Store.open(dbPath, { readonly: true });
  try {
    const run = store.runs.latest();
    const fromStore = new SnapshotBuilder(store, IDLE_FILTER, run?.outDir ?? '', run?.id ?? NO_RUN).build({
      paused: false,
      draining: false,
    });
    let live: CoordinatorSnapshot | null = null;
    try {
      const raw = JSON.parse(await readFile(join(resolve(dbPath, '..'), LIVE_STATUS_FILE), 'utf8')) as { snapshot: CoordinatorSnapshot };
      if (Date.now() - raw.snapshot.nowMs < LIVE_FRESH_MS && run && run.endedAt === null) live = raw.snapshot;
    } catch {
      live = null;
    }
    const snapshot: CoordinatorSnapshot = live
      ? { ...live, shards: fromStore.shards, actors: fromStore.actors.map((a) => ({ ...a, ...pickRates(live!, a.actorId) })), output: fromStore.output, topErrors: fromStore.topErrors }
      : { ...fromStore, startedAtMs: run?.startedAt ?? fromStore.startedAtMs };
    return { snapshot, coordinatorUp: live !== null };
  } finally {
    store.close();
  }
}

function pickRates(live: CoordinatorSnapshot, actorId: string): { candidatesPerSec: number; imagesPerSec: number } {
  const a = live.actors.find((x) => x.actorId === actorId);
  return { candidatesPerSec: a?.candidatesPerSec ?? 0, imagesPerSec: a?.imagesPerSec ?? 0 };
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('shards, actors, throughput and errors of the coordinator, from its state file')
    .option('--json', 'machine-readable output', false)
    .option('--db <path>', 'the SQLite state file (default <state>/cah.sqlite)')
    .addHelpText(
      'after',
      `
Examples:
  cah status
  cah status --json | jq .shards
  cah status --db /srv/cah/cah.sqlite`,
    )
    .action(async (flags: { json: boolean; db?: string }) => {
      const dbPath = flags.db ? resolve(flags.db) : join(resolveStateDir(program.opts()['state']), STATE_FILE);
      const { snapshot, coordinatorUp } = await statusSnapshot(dbPath);
      // The swarm modules (ssh2) load only where a swarm is recorded: status stays quick to start.
      const swarm = existsSync(join(dirname(dbPath), 'swarm')) ? await import('../swarm/cost.js') : null;
      const cost = swarm?.swarmCost(dirname(dbPath), { startedAtMs: snapshot.startedAtMs, nowMs: snapshot.nowMs, kept: snapshot.totals.kept }) ?? null;
      if (flags.json) {
        const summary = { coordinatorUp, ...snapshotSummary(snapshot), shards: snapshot.shards, totals: snapshot.totals, cost, snapshot };
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      } else {
        process.stdout.write(formatStatusText(snapshot, process.stdout.columns ?? 100) + '\n');
        if (cost && swarm) process.stdout.write(swarm.formatSwarmCost(cost) + '\n');
        if (snapshot.ended) process.stdout.write(closingLine(snapshot) + '\n');
        else if (!coordinatorUp && snapshot.runId === NO_RUN) process.stdout.write('(no run yet: figures from the state file)\n');
        else if (!coordinatorUp) {
          process.stdout.write('(coordinator not running and its last run did not end cleanly: figures from the state file)\n');
        }
      }
    });
}
