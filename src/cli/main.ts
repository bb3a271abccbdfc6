#!/usr/bin/env node
import './early-env.js';
import { Command, CommanderError } from 'commander';
import { CliError } from './errors.js';

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

/**
 * Each command's module, loaded only when that command runs: a swarm worker host ships only the
 * worker's dependencies (no SQLite, ONNX Runtime, ink, ssh2), and `cah status` does not pay for
 * loading ONNX Runtime, sharp and ink. Help and unknown commands load them all.
 */
const COMMANDS: Record<string, (p: Command) => Promise<void>> = {
  worker: async (p) => (await import('./worker.js')).registerWorkerCommand(p),
  demo: async (p) => (await import('./demo.js')).registerDemoCommand(p),
  gpu: async (p) => (await import('./gpu.js')).registerGpuCommand(p),
  shards: async (p) => (await import('./shards.js')).registerShardCommands(p),
  extract: async (p) => (await import('./extract.js')).registerExtractCommand(p),
  status: async (p) => (await import('./status.js')).registerStatusCommand(p),
  model: async (p) => (await import('./model.js')).registerModelCommands(p),
  clip: async (p) => (await import('./clip.js')).registerClipCommands(p),
  swarm: async (p) => (await import('./swarm.js')).registerSwarmCommands(p),
  state: async (p) => (await import('./state-check.js')).registerStateCommands(p),
  token: async (p) => (await import('./token.js')).registerTokenCommands(p),
};

const invoked = commandName(process.argv.slice(2));
const only = invoked !== null ? COMMANDS[invoked] : undefined;
if (only) await only(program);
else for (const register of Object.values(COMMANDS)) await register(program);

/** The first argument that is not a global option (or its value) names the command. */
function commandName(args: string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--state') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return null;
}

const FILE_ERRORS = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'EEXIST', 'ENOSPC', 'ENAMETOOLONG', 'ELOOP']);

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
  // A damaged, missing or unusable state file (src/store/db.ts; matched by name: no SQLite on worker hosts).
  if (err instanceof Error && err.name === 'StateFileError') fail(err.message, 1);
  // A path the user gave that cannot be read or written: their mistake, not a bug.
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof Error && code && FILE_ERRORS.has(code)) fail(err.message, 2);
  throw err;
}
