import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { STATE_FILE, Store } from '../store/state-file.js';
import { CliError } from './errors.js';
import { resolveStateDir } from './state.js';

/** `cah state check` and `cah state backup FILE`: the state file's integrity and a safe copy of it. */
export function registerStateCommands(program: Command): void {
  const state = program.command('state').description('the state file: check its integrity, back it up');
  const open = (): Store => {
    const stateDir = resolveStateDir(program.opts()['state']);
    if (!existsSync(`${stateDir}/${STATE_FILE}`)) throw new CliError(`no state file in ${stateDir}`, 'CAH_PARTIAL');
    return Store.openInStateDir(stateDir, { readonly: true });
  };
  state
    .command('check')
    .description("SQLite's integrity_check of the state file: exit 0 when it is sound, 1 with the problems found")
    .action(() => {
      const store = open();
      try {
        const problems = store.integrityCheck();
        if (problems.length === 1 && problems[0] === 'ok') {
          const counts = store.shards.counts();
          process.stdout.write(`state file ${store.path}: ok (${counts.done} done, ${counts.queued} queued, ${counts.leased} leased, ${counts.failed} failed shards)\n`);
          return;
        }
        process.stdout.write(`state file ${store.path} is damaged:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
        throw new CliError('the state file is damaged: restore a backup (`cah state backup FILE` makes one)', 'CAH_PARTIAL');
      } finally {
        store.close();
      }
    });
  state
    .command('backup <file>')
    .description('a consistent copy of the state file, safe while `cah gpu` runs (SQLite online backup)')
    .action(async (file: string) => {
      const destination = resolve(file);
      if (existsSync(destination)) throw new CliError(`${destination} exists: choose a new file name`);
      const store = open();
      try {
        await store.backup(destination);
      } finally {
        store.close();
      }
      process.stdout.write(`backed up ${store.path} to ${destination}\n`);
    });
}
