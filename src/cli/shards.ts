import { Option, type Command } from 'commander';
import { Store } from '../store/state-file.js';
import { expandShardSources } from '../warc/shard-sources.js';
import { sourceGuard } from '../worker/ssrf.js';
import { intFlag, resolveStateDir } from './state.js';
import { CliError } from './errors.js';

const SHARD_STATES = ['queued', 'leased', 'done', 'failed'];

export function registerShardCommands(program: Command): void {
  const shards = program.command('shards').description('the queue of WAT/WARC shards (tasks) to process');
  shards
    .command('add')
    .description('queue WAT/WARC files, URLs, *.paths.gz listings or a Common Crawl crawl id')
    .argument('<source...>', 'file.wat[.gz] | file.warc[.gz] | http(s) URL | wat.paths.gz | CC-MAIN-YYYY-WW')
    .option('--limit <n>', 'take at most N shards from each listing or crawl', intFlag(1))
    .addOption(new Option('--allow-loopback', 'fetch listings from 127.0.0.0/8 and ::1 (tests only)').env('CAH_ALLOW_LOOPBACK').default(false))
    .option('--allow-private', 'fetch listings from private addresses (a private mirror)', false)
    .addHelpText(
      'after',
      `
Examples:
  cah shards add ./CC-MAIN-20240522-00000.warc.wat.gz
  cah shards add https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-22/wat.paths.gz --limit 100
  cah shards add CC-MAIN-2024-22 --limit 10`,
    )
    .action(async (sources: string[], flags: { limit?: number; allowLoopback: boolean; allowPrivate: boolean }) => {
      const guard = sourceGuard({ allowLoopback: flags.allowLoopback, allowPrivate: flags.allowPrivate });
      const store = Store.openInStateDir(resolveStateDir(program.opts()['state']));
      try {
        let added = 0;
        let existing = 0;
        for (const source of sources) {
          const expanded = await expandShardSources(source, { guard, ...(flags.limit !== undefined ? { limit: flags.limit } : {}) });
          const r = store.shards.add(expanded);
          added += r.added;
          existing += r.existing;
        }
        process.stdout.write(`added ${added} shard(s)${existing ? `, ${existing} already queued or done` : ''}\n`);
      } finally {
        store.close();
      }
    });
  shards
    .command('ls')
    .description('list shards with their state and counts')
    // Positional: `--state` is every command's state directory.
    .argument('[states...]', 'only shards in these states: queued, leased, done, failed')
    .option('--limit <n>', 'at most N shards (the first by id)', intFlag(1))
    .option('--json', 'one JSON array', false)
    .addHelpText(
      'after',
      `
Examples:
  cah shards ls
  cah shards ls failed --limit 20
  cah shards ls queued leased --json`,
    )
    .action((states: string[], flags: { json: boolean; limit?: number }) => {
      const unknown = states.filter((s) => !SHARD_STATES.includes(s));
      if (unknown.length > 0) throw new CliError(`unknown shard state "${unknown[0]}": expected ${SHARD_STATES.join(', ')}`);
      const store = Store.openInStateDir(resolveStateDir(program.opts()['state']));
      try {
        const rows = store.shards
          .list()
          .filter((r) => states.length === 0 || states.includes(r.state))
          .slice(0, flags.limit ?? Infinity);
        if (flags.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        const header = ['id', 'state', 'attempts', 'candidates', 'downloaded', 'kept', 'output', 'source / error'];
        const lines = rows.map((r) => [
          String(r.id),
          r.state,
          String(r.attempts),
          String(r.candidates),
          String(r.downloaded),
          String(r.kept),
          r.outputShard ?? '-',
          r.state === 'failed' || (r.state === 'queued' && r.error) ? `${r.source}  (${r.error})` : r.source,
        ]);
        const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
        const fmt = (cols: string[]): string =>
          cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
        process.stdout.write([fmt(header), ...lines.map(fmt)].join('\n') + '\n');
        const c = store.shards.counts();
        const shown = states.length > 0 || flags.limit !== undefined ? `${rows.length} shown of ` : '';
        process.stdout.write(`${shown}${c.queued + c.leased + c.done + c.failed} shards: ${c.queued} queued, ${c.leased} leased, ${c.done} done, ${c.failed} failed\n`);
      } finally {
        store.close();
      }
    });
  shards
    .command('retry')
    .description('queue failed shards again with a fresh retry budget')
    .action(() => {
      const store = Store.openInStateDir(resolveStateDir(program.opts()['state']));
      try {
        process.stdout.write(`requeued ${store.shards.retryFailed()} failed shard(s)\n`);
      } finally {
        store.close();
      }
    });
}
