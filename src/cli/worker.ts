import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { GIVE_UP_AFTER_MS, WorkerActor } from '../worker/actor.js';
import { CliError, reportOutcome } from './errors.js';
import { createLogger } from './state.js';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run one scraper actor that leases shards from a coordinator')
    .requiredOption('--coordinator <host:port>', 'the coordinator gRPC address')
    .option('--token <token>', 'worker token (prefer env CAH_WORKER_TOKEN: argv is visible to other users)')
    .option('--coordinator-ca <file>', "dial with TLS, trusting only this certificate (the coordinator's, for --direct swarms; env CAH_COORDINATOR_CA)")
    .option('--actor-id <id>', 'actor id to register under (set by the coordinator for local and swarm actors)')
    .option('--exit-when-drained', 'exit 0 once no shard is queued or leased', false)
    .option('--give-up-after <seconds>', 'with --exit-when-drained: exit 1 once the coordinator has been unreachable this long (its run is over or gone)', String(GIVE_UP_AFTER_MS / 1000))
    .addHelpText(
      'after',
      `
Examples:
  CAH_WORKER_TOKEN=$(cat ~/.local/share/cah/worker-token) cah worker --coordinator 127.0.0.1:7443
  cah worker --coordinator gpu-box:7443 --token 3f9c… --exit-when-drained
  cah worker --coordinator gpu.example.org:7443 --coordinator-ca coordinator.crt   # TLS, pinned`,
    )
    .action(async (flags: { coordinator: string; coordinatorCa?: string; token?: string; actorId?: string; exitWhenDrained: boolean; giveUpAfter: string }) => {
      const token = flags.token ?? process.env['CAH_WORKER_TOKEN'];
      if (!token) throw new CliError('no worker token: pass --token or set CAH_WORKER_TOKEN (the coordinator keeps it in <state>/worker-token)');
      if (!/^[^:]+:\d+$/.test(flags.coordinator) && !/^\[[^\]]+\]:\d+$/.test(flags.coordinator)) {
        throw new CliError(`--coordinator must be HOST:PORT, got "${flags.coordinator}"`);
      }
      const giveUpAfter = Number(flags.giveUpAfter);
      if (!Number.isFinite(giveUpAfter) || giveUpAfter <= 0) throw new CliError(`--give-up-after must be a positive number of seconds, got "${flags.giveUpAfter}"`);
      const caFile = flags.coordinatorCa ?? process.env['CAH_COORDINATOR_CA'];
      let coordinatorCa: Buffer | undefined;
      if (caFile) {
        try {
          coordinatorCa = readFileSync(caFile);
        } catch (err) {
          throw new CliError(`cannot read the coordinator certificate ${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        if (!coordinatorCa.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`${caFile} is not a PEM certificate`);
      }
      const logger = createLogger({ name: 'cah-worker' });
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      watchParent(stop);
      const actor = new WorkerActor({
        coordinator: flags.coordinator,
        token,
        exitWhenDrained: flags.exitWhenDrained,
        giveUpAfterMs: giveUpAfter * 1000,
        ...(coordinatorCa ? { coordinatorCa } : {}),
        logger,
        signal: stop.signal,
        ...(flags.actorId ? { actorId: flags.actorId } : {}),
      });
      const end = await actor.run();
      // grpc-js and undici may keep sockets in their pools for a while; the actor is done.
      reportOutcome(end === 'refused' ? 'refused' : end === 'coordinator-gone' ? 'partial' : 'ok', { exit: true });
    });
}

/** A local worker exits when its coordinator process is gone (killed hard), instead of dialing forever. */
function watchParent(stop: AbortController): void {
  const parent = Number(process.env['CAH_PARENT_PID']);
  if (!parent) return;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      stop.abort();
      setTimeout(() => process.exit(0), 2000).unref();
    }
  }, 500);
  timer.unref();
}
