import type { Logger } from 'pino';
import type { RunningCoordinator } from '../coordinator/run.js';
import { listSwarms } from '../swarm/state.js';
import { SwarmSupervisor } from '../swarm/supervisor.js';

/**
 * Holds the swarm recorded in the state directory for as long as the coordinator runs: reverse
 * tunnels to every server, swarm servers shown as actors, dead workers restarted and replaced.
 * What the supervisor sees of each server's actor is reported to the coordinator's actor manager,
 * as the local worker pool reports its processes.
 */
export async function holdSwarm(
  running: RunningCoordinator,
  opts: { stateDir: string; workerToken: string; logger: Logger; replaceAfterMs: number },
): Promise<void> {
  const swarms = listSwarms(opts.stateDir).filter((s) => s.servers.length > 0);
  if (swarms.length === 0) return;
  const { coordinator } = running;
  const { logger } = opts;
  const supervisor = new SwarmSupervisor({
    stateDir: opts.stateDir,
    serveConnection: (connection) => coordinator.serveConnection(connection),
    workerToken: opts.workerToken,
    replaceAfterMs: opts.replaceAfterMs,
    log: (obj, msg) => logger.info(obj, msg),
    isWorkerAlive: (server) => coordinator.actors.isAlive(server),
    onActorEvent: (event) => {
      const cause = event.cause ?? event.state;
      if (event.state === 'PENDING_CREATION') coordinator.actors.expect(event.server, 'swarm', event.ip);
      else if (event.state === 'RESTARTING' || event.state === 'DEAD') {
        void coordinator.actorDied(event.server, cause, event.state === 'RESTARTING').catch((err: unknown) => logger.error({ actor: event.server, err: String(err) }, 'actor death not recorded'));
      }
    },
  });
  await supervisor.start();
  logger.info({ swarms: swarms.map((s) => s.swarm), servers: swarms.reduce((n, s) => n + s.servers.length, 0) }, 'holding the swarm: reverse tunnels to its servers');
  coordinator.once('stopped', () => void supervisor.stop());
}
