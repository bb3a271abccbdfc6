#!/usr/bin/env node
import './early-env.js';
import { Command, CommanderError } from 'commander';
import { CahError } from '../errors.js';
import { VERSION } from '../version.js';
import { commandOutcome, type Outcome } from './errors.js';

const program = new Command('cah')
  .description('Crawling@Home rebuilt: turn Common Crawl into CLIP-filtered image–caption datasets')
  .version(VERSION)
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

/**
 * Exit codes, decided here only, one per class of failure: 0 success; 1 the work failed or partly
 * failed (failed shards, servers not created, a damaged state file, a remote such as the network,
 * the hub or Common Crawl unreachable); 2 usage or configuration error (flags, files the user
 * named); 3 worker refused by the coordinator.
 */
const EXIT_PARTIAL = 1;
const EXIT_USAGE = 2;
const EXIT_REFUSED = 3;

/** cah's own errors by code (src/errors.ts): each is printed as one line and exits with its class's code. */
const EXIT_BY_CODE: Record<string, number> = {
  CAH_USAGE: EXIT_USAGE,
  CAH_PARTIAL: EXIT_PARTIAL,
  CAH_REMOTE: EXIT_PARTIAL,
  // A damaged, missing or unusable state file (src/store/db.ts).
  CAH_STATE_FILE: EXIT_PARTIAL,
  CAH_SCHEMA_TOO_NEW: EXIT_PARTIAL,
  CAH_WEAK_TOKEN: EXIT_USAGE,
  CAH_SOURCE_INVALID: EXIT_USAGE,
  CAH_SOURCE_UNREACHABLE: EXIT_PARTIAL,
  CAH_EXTRACT_UNREADABLE: EXIT_USAGE,
  CAH_EXTRACT_STOPPED: EXIT_PARTIAL,
  CAH_EXTRACT_EMPTY: EXIT_USAGE,
  CAH_METRICS_ADDRESS: EXIT_USAGE,
  CAH_METRICS_LISTEN: EXIT_USAGE,
  CAH_FILTER_CONFIG: EXIT_USAGE,
  CAH_OUTPUT_DIR: EXIT_USAGE,
  CAH_NO_SHARDS: EXIT_USAGE,
  CAH_NO_TLS_CERT: EXIT_USAGE,
  CAH_DEMO_DIR: EXIT_USAGE,
  // A peer that does not speak this version's protocol (src/worker/actor.ts).
  CAH_PROTOCOL: EXIT_PARTIAL,
};

const EXIT_BY_OUTCOME: Record<Outcome, number> = { ok: 0, partial: EXIT_PARTIAL, refused: EXIT_REFUSED };

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
  const { outcome, exit } = commandOutcome();
  if (exit) process.exit(EXIT_BY_OUTCOME[outcome]);
  if (outcome !== 'ok') process.exitCode = EXIT_BY_OUTCOME[outcome];
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; usage errors were already printed by commander.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  const exitCode = err instanceof CahError ? EXIT_BY_CODE[err.code] : undefined;
  if (exitCode !== undefined) fail((err as Error).message, exitCode);
  // A path the user gave that cannot be read or written: their mistake, not a bug.
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof Error && code && FILE_ERRORS.has(code)) fail(err.message, EXIT_USAGE);
  throw err;
}
