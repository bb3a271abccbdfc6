import type { Command } from 'commander';
import { rotateWorkerToken } from '../coordinator/credentials.js';
import { resolveStateDir } from './state.js';

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('the worker token: the shared secret workers present to the coordinator');
  token
    .command('rotate')
    .description('replace the worker token with a new random one (0600 file in the state directory)')
    .addHelpText(
      'after',
      `
Afterwards restart \`cah gpu\` (it reads the token at start); local workers get the new token from it,
swarm workers when \`cah swarm up\` provisions them again. Workers holding the old token are refused.`,
    )
    .action(async () => {
      const { path } = await rotateWorkerToken(resolveStateDir(program.opts()['state']));
      process.stdout.write(`new worker token written to ${path}; restart cah gpu and re-provision swarm workers to use it\n`);
    });
}
