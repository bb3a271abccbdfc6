import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

export interface LocalWorkerPoolOptions {
  count: number;
  coordinatorAddress: string;
  workerToken: string;
  /** Ray's max_restarts: how many times one actor's process is started again after dying. */
  maxRestarts: number;
  logger: Logger;
  /** The coordinator marks the actor RESTARTING or DEAD and returns its leases. */
  onDeath: (actorId: string, cause: string, restarting: boolean) => void;
  /** Extra `cah worker` flags (tests). */
  extraArgs?: string[];
  /** Where each worker's stderr (its JSON log) is kept, appended to `<actor>.log`. */
  logDir?: string;
}

interface Slot {
  actorId: string;
  child: ChildProcess | null;
  restarts: number;
  stopping: boolean;
  /** Out of restarts: this actor is DEAD for good, with this cause. */
  deadCause: string | null;
}

/**
 * The only variables a local worker gets from the coordinator's environment: the processes that
 * decode hostile images must not hold HCLOUD_TOKEN, HF_TOKEN or any other secret of the user.
 */
export const WORKER_ENV_ALLOWLIST = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'TEMP', 'TMP',
  'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'UV_THREADPOOL_SIZE', 'CAH_LOG_LEVEL', 'SYSTEMROOT',
];

/** A worker's environment: the allowlisted variables of `env`, then `extra`. */
export function workerEnvironment(env: NodeJS.ProcessEnv, extra: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const name of WORKER_ENV_ALLOWLIST) if (env[name] !== undefined) out[name] = env[name];
  return { ...out, ...extra };
}

/**
 * The error a dead worker reported: its last log line at level error or above, else the last
 * uncaught-exception line of its stderr. Warnings and other chatter are never a death cause.
 */
export function lastErrorLine(stderr: string): string | null {
  let found: string | null = null;
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('{')) {
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
        if ((entry.level ?? 0) >= 50) {
          const err = typeof entry.err === 'string' ? entry.err : (entry.err as { message?: string } | undefined)?.message;
          found = [entry.msg, err].filter(Boolean).join(': ');
        }
      } catch {
        // A torn JSON line: not an error report.
      }
    } else if (/^(?:[A-Z]\w*)?Error(?: \[[A-Z_0-9]+\])?: /.test(line)) {
      found = line;
    }
  }
  return found ? found.slice(0, 200) : null;
}

/** `cah gpu --local-workers N`: N worker processes on this machine, restarted when they die. */
export class LocalWorkerPool {
  private readonly slots: Slot[] = [];
  private stopping = false;

  constructor(private readonly opts: LocalWorkerPoolOptions) {
    for (let i = 0; i < opts.count; i++) this.slots.push({ actorId: `local-${i + 1}`, child: null, restarts: 0, stopping: false, deadCause: null });
  }

  get actorIds(): string[] {
    return this.slots.map((s) => s.actorId);
  }

  start(): void {
    for (const slot of this.slots) this.spawn(slot);
  }

  /** When every local actor is DEAD for good (out of restarts): the last death cause; else null. */
  exhausted(): string | null {
    if (this.stopping || this.slots.some((s) => s.deadCause === null)) return null;
    return this.slots.map((s) => `${s.actorId}: ${s.deadCause}`).join('; ');
  }

  /** The process of an actor, for tests that kill one. */
  pidOf(actorId: string): number | undefined {
    return this.slots.find((s) => s.actorId === actorId)?.child?.pid;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const child = slot.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private spawn(slot: Slot): void {
    // A process boundary, not an import: a local worker is the `cah worker` command, as on a swarm host.
    const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
    const execArgv = main.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const args = [
      ...execArgv,
      main,
      'worker',
      '--coordinator',
      this.opts.coordinatorAddress,
      '--actor-id',
      slot.actorId,
      '--exit-when-drained',
      ...(this.opts.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, {
      // The token travels in the environment, not argv, so `ps` does not show it.
      env: workerEnvironment(process.env, { CAH_WORKER_TOKEN: this.opts.workerToken, CAH_PARENT_PID: String(process.pid) }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    slot.child = child;
    let stderrTail = '';
    if (this.opts.logDir && child.stderr) {
      mkdirSync(this.opts.logDir, { recursive: true, mode: 0o700 });
      const file = createWriteStream(join(this.opts.logDir, `${slot.actorId}.log`), { flags: 'a', mode: 0o600 });
      file.on('error', () => undefined);
      child.stderr.pipe(file);
    }
    child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-8000);
    });
    child.once('exit', (code, signal) => {
      slot.child = null;
      if (this.stopping) return;
      if (code === 0) {
        slot.deadCause = 'exited: no shards left';
        this.opts.onDeath(slot.actorId, slot.deadCause, false);
        return;
      }
      const error = lastErrorLine(stderrTail);
      const cause = `process ${signal ? `killed by ${signal}` : `exited with code ${code}`}${error ? `: ${error}` : ''}`;
      const restarting = slot.restarts < this.opts.maxRestarts;
      if (!restarting) slot.deadCause = cause;
      this.opts.onDeath(slot.actorId, cause, restarting);
      if (restarting) {
        slot.restarts++;
        const delay = Math.min(30_000, 500 * 2 ** (slot.restarts - 1));
        this.opts.logger.warn({ actor: slot.actorId, cause, restart: slot.restarts, delay_ms: delay }, 'restarting actor');
        setTimeout(() => {
          if (!this.stopping) this.spawn(slot);
        }, delay).unref();
      }
    });
  }
}
