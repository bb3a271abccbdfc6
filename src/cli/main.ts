#!/usr/bin/env node
import './production-env.js';
import { Command, CommanderError } from 'commander';
import { CliError } from './errors.js';
import { registerGpuCommand } from './gpu.js';
import { registerWorkerCommand } from './worker.js';
import { registerShardCommands } from './shards.js';
import { registerExtractCommand } from './extract.js';
import { registerStatusCommand } from './status.js';
import { registerDemoCommand } from './demo.js';
import { registerModelCommands } from './model.js';
import { registerClipCommands } from './clip.js';

const program = new Command('cah')
  .description('Crawling@Home rebuilt: turn Common Crawl into CLIP-filtered image–caption datasets')
  .version('0.1.0')
  .option('--state <dir>', 'state directory: SQLite file, worker token, keys (env CAH_STATE, default ~/.local/share/cah)')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    `
Examples:
  npm start                                   # the demo: a fixture web on loopback, end to end
  cah shards add CC-MAIN-2024-22 --limit 10   # queue 10 WAT shards of a crawl
  cah gpu --local-workers 2 --model ~/.cache/cah/models/Xenova--clip-vit-base-patch32 --out ./dataset
  cah swarm up 20 fsn1                        # 20 Hetzner scraper servers, tunnelled to this coordinator
  cah status --json                           # figures from another terminal
  cah swarm down --yes                        # delete exactly the servers cah created`,
  );
program.exitOverride();

registerDemoCommand(program);
registerGpuCommand(program);
registerWorkerCommand(program);
registerShardCommands(program);
registerExtractCommand(program);
registerStatusCommand(program);
registerModelCommands(program);
registerClipCommands(program);

function fail(message: string, code: number): never {
  process.stderr.write(`cah: ${message}\n`);
  process.exit(code);
}

// `cah extract … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; usage errors were already printed by commander.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof CliError) fail(err.message, err.exitCode);
  if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT') fail(err.message, 2);
  throw err;
}
