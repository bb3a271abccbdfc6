import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { WORKER_CTL } from './bootstrap.js';
import { SwarmConfigError } from './errors.js';
import { KnownHosts, SshSession } from './ssh.js';
import { findServer, readSshKeyPair, swarmDir } from './state.js';

/**
 * `cah swarm logs SERVER [-f]`: the worker's journal (or its log file on hosts without systemd),
 * over SSH with the pinned host key. Resolves with the remote exit code.
 */
export async function streamWorkerLogs(opts: {
  stateDir: string;
  server: string;
  follow: boolean;
  out: Writable;
  err: Writable;
  signal?: AbortSignal;
}): Promise<number | null> {
  const found = findServer(opts.stateDir, opts.server);
  if (!found) throw new SwarmConfigError(`no swarm server "${opts.server}" is recorded in ${swarmDir(opts.stateDir)} (see cah swarm ls)`);
  const pair = readSshKeyPair(opts.stateDir);
  if (!pair) throw new SwarmConfigError(`no swarm SSH key in ${swarmDir(opts.stateDir)}`);
  const session = await SshSession.connect(
    { name: found.server.name, host: found.server.ip, port: found.swarm.sshPort },
    { privateKey: pair.privateKey, knownHosts: new KnownHosts(join(swarmDir(opts.stateDir), 'known_hosts')) },
  );
  try {
    return await session.stream(`sh ${WORKER_CTL} logs${opts.follow ? ' -f' : ''}`, opts.out, opts.err, opts.signal);
  } finally {
    session.close();
  }
}
