import { createReadStream, readFileSync } from 'node:fs';
import type { WorkerBundle } from './bundle.js';
import type { SwarmLog } from './log.js';
import { nodeReleaseEnv } from './node-release.js';
import { swarmAsset } from './package-root.js';
import { SshSession, type KnownHosts, type SshTarget } from './ssh.js';
import type { CoordinatorRoute } from './state.js';

/** The host paths, relative to CAH_HOST_ROOT (set by the test hosts' sshd; unset on real servers). */
const ROOT = '"${CAH_HOST_ROOT:-}"';
const BOOTSTRAP = `${ROOT}/opt/cah/bin/cah-bootstrap`;
const NODE_PIN = `${ROOT}/opt/cah/bin/node-release.env`;
export const WORKER_CTL = `${ROOT}/opt/cah/bin/cah-worker-ctl`;
const CA_FILE = '/etc/cah/coordinator-ca.pem';

export interface BootstrapOptions {
  privateKey: string;
  knownHosts: KnownHosts;
  bundle: WorkerBundle;
  workerToken: string;
  route: CoordinatorRoute;
  /** The coordinator's certificate that direct-mode workers pin. */
  coordinatorCaPem?: string;
  /** Until when a fresh server may still be booting. */
  connectDeadline: number;
  log: SwarmLog;
}

export interface BootstrapResult {
  /** The host's loopback address the worker dials and the coordinator's tunnel binds. */
  tunnelBind: string;
  uploaded: boolean;
  restarted: boolean;
  worker: string;
}

/** `m:ss`, as the progress lines show a wait. */
export function minutesSeconds(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

/** `key=value` lines of the host scripts; an `error=` line is the script's one-line failure. */
function parseFacts(target: SshTarget, step: string, res: { code: number | null; stdout: string; stderr: string }): Record<string, string> {
  const facts: Record<string, string> = {};
  for (const line of res.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) facts[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  if (facts['error'] || res.code !== 0) {
    const why = facts['error'] || res.stderr.trim().split('\n').slice(-3).join(' ') || `exit code ${res.code}`;
    throw new Error(`${target.name}: ${step} failed: ${why}`);
  }
  return facts;
}

async function upload(session: SshSession, source: string | Buffer, remotePath: string): Promise<void> {
  const dir = remotePath.slice(0, remotePath.lastIndexOf('/'));
  const res = await session.exec(`mkdir -p ${dir} && cat > ${remotePath}.tmp && mv ${remotePath}.tmp ${remotePath}`, {
    stdin: typeof source === 'string' ? createReadStream(source) : source,
  });
  if (res.code !== 0) throw new Error(`${session.target.name}: upload to ${remotePath} failed: ${res.stderr.trim()}`);
}

/**
 * Makes a host a running swarm worker, over SSH: checks what cloud-init should have done, uploads the
 * worker bundle unless the host has it, writes the worker environment (the token travels on stdin
 * into a 0600 file, never on a command line) and (re)starts the worker when something changed.
 */
export async function bootstrapHost(target: SshTarget, opts: BootstrapOptions): Promise<BootstrapResult> {
  const session = await SshSession.connectWhenReady(target, {
    privateKey: opts.privateKey,
    knownHosts: opts.knownHosts,
    deadline: opts.connectDeadline,
    onWaiting: (ms) => opts.log({ server: target.name, waited: minutesSeconds(ms) }, 'waiting for SSH'),
  });
  try {
    await upload(session, readFileSync(swarmAsset('bootstrap.sh')), BOOTSTRAP);
    await upload(session, Buffer.from(nodeReleaseEnv()), NODE_PIN);
    const probe = parseFacts(target, 'probe', await session.exec(`sh ${BOOTSTRAP} probe ${opts.bundle.id}`, { timeoutMs: 20 * 60_000 }));
    const tunnelBind = probe['tunnel_bind'] || '127.0.0.1';
    const uploaded = probe['bundle'] !== 'present';
    if (uploaded) {
      // Modules are built for the swarm's platform (--arch) from the lockfile; a host of another one cannot run them.
      if (probe['platform'] !== opts.bundle.platform) {
        throw new Error(`${target.name}: the host is ${probe['platform']}, the worker bundle is built for ${opts.bundle.platform} (--arch ${opts.bundle.platform.includes('arm64') ? 'arm64' : 'x86'})`);
      }
      opts.log({ server: target.name, bundle: opts.bundle.id, platform: probe['platform'], node: probe['node'] }, 'uploading the worker bundle');
      await upload(session, opts.bundle.packPath, `${ROOT}/opt/cah/incoming/${opts.bundle.id}.tgz`);
      await upload(session, opts.bundle.modulesPath, `${ROOT}/opt/cah/incoming/${opts.bundle.id}-modules.tgz`);
    }
    const env = [`CAH_WORKER_TOKEN=${opts.workerToken}`, `CAH_ACTOR_ID=${target.name}`];
    if (opts.route.mode === 'tunnel') {
      env.push(`CAH_COORDINATOR=${tunnelBind}:${opts.route.port}`);
    } else {
      if (!opts.coordinatorCaPem) throw new Error('direct mode needs the coordinator certificate');
      await upload(session, Buffer.from(opts.coordinatorCaPem), `${ROOT}${CA_FILE}`);
      env.push(`CAH_COORDINATOR=${opts.route.address}`, `CAH_COORDINATOR_CA=@ROOT@${CA_FILE}`);
    }
    const install = parseFacts(
      target,
      'install',
      await session.exec(`sh ${BOOTSTRAP} install ${opts.bundle.id}`, { stdin: env.join('\n') + '\n', timeoutMs: 20 * 60_000 }),
    );
    return { tunnelBind, uploaded, restarted: install['restarted'] === 'yes', worker: install['worker'] ?? 'unknown' };
  } finally {
    session.close();
  }
}
