import type { ExtraColumn } from '../filter/pair-filter.js';
import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { FilterStage } from '../filter/stage.js';
import { claimOutputDir, type OutputMode } from '../output/ownership.js';
import { PARTIAL_DIR, removeStalePartials, removeUncommittedShards } from '../output/shard-writer.js';
import { isSqliteError, StateFileError } from '../store/db.js';
import type { Store } from '../store/state-file.js';
import type {
  ClaimKeysRequest,
  ClaimKeysResponse,
  CompleteShardRequest,
  CompleteShardResponse,
  CreditGrant,
  FailShardRequest,
  FailShardResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LeaseShardRequest,
  LeaseShardResponse,
  RegisterRequest,
  RegisterResponse,
  SampleMessage,
} from '../wire/contract.js';
import { MAX_MESSAGE_BYTES } from '../wire/contract.js';
import { RpcError, bindServer, connectionInjector, createGrpcServer, destroyConnections, sessionOf, type CallContext, type CoordinatorHandlers, type TlsIdentity } from './service.js';
import { ShardAttempt } from './shard-attempt.js';
import { CreditBudget, StaleLeaseError, serveSampleStream } from './sample-stream.js';
import type { CoordinatorSettings } from './settings.js';
import { ActorManager } from './actor-manager.js';
import { SnapshotBuilder } from './snapshot-builder.js';
import type { CoordinatorSnapshot } from './snapshot.js';
import type { ReturnedLease } from '../store/shards.js';

export interface CoordinatorOptions {
  store: Store;
  outDir: string;
  workerToken: string;
  filter: FilterStage;
  settings: CoordinatorSettings;
  logger: Logger;
  /** Extra parquet columns the filter adds, and the embedding size when the filter returns embeddings. */
  extraColumns?: ExtraColumn[];
  embeddingDim?: number;
  /** How often supervision runs (heartbeat and lease checks). */
  superviseIntervalMs?: number;
  /** A non-empty output directory of another run: refuse (default), --incremental or --overwrite. */
  outputMode?: OutputMode;
  /** The state directory, recorded in the output directory it owns. */
  stateDir?: string;
}

/** DEAD actors kept for `cah status`; older ones are forgotten. */
const KEEP_DEAD_ACTORS = 200;

/** Errors of the coordinator's own disk: they fail the attempt, never the shard's retry budget. */
const DISK_FAULTS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EIO', 'EMFILE', 'ENFILE', 'ENOTDIR', 'ENOENT']);

export function isDiskFault(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && DISK_FAULTS.has(code);
}

function digest(session: string): string {
  return createHash('sha256').update(session).digest('hex');
}

/** A worker works one shard at a time; a heartbeat listing more is broken or hostile (each costs a query). */
const MAX_REPORTED_SHARDS = 16;

/**
 * The head: owns the gRPC service, hands out shards under leases, supervises actors, and turns the
 * samples streamed by workers into committed output shards. All persistent state goes through the
 * Store; in memory it keeps only the shard attempts in progress.
 */
export class Coordinator extends EventEmitter implements CoordinatorHandlers {
  readonly runId = `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
  private server: grpc.Server | null = null;
  private injector: grpc.ConnectionInjector | null = null;
  private superviseTimer: NodeJS.Timeout | null = null;
  private readonly attempts = new Map<number, ShardAttempt>();
  private readonly opening = new Map<number, Promise<ShardAttempt>>();
  private paused = false;
  /** Set while the output directory cannot be written (a full disk): leasing waits, then resumes. */
  private diskFault: string | null = null;
  private probing = false;
  /** Shards whose files are being renamed into place: nothing may return their lease meanwhile. */
  private readonly publishing = new Set<number>();
  private draining = false;
  private port = 0;
  private shardOffset = 0;
  private stateIno: number | null = null;
  private fatal: Error | null = null;
  readonly snapshots: SnapshotBuilder;
  private readonly creditBudget: CreditBudget;
  /** Actor state's one owner: the handlers here, the local worker pool and the swarm supervisor all report through it. */
  readonly actors: ActorManager;

  constructor(private readonly opts: CoordinatorOptions) {
    super();
    this.creditBudget = new CreditBudget(opts.settings.creditBudget, opts.settings.creditWindow, opts.settings.creditBytes);
    this.actors = new ActorManager(opts.store.actors);
    this.snapshots = new SnapshotBuilder(opts.store, opts.filter, opts.outDir, this.runId);
    this.snapshots.trackAttempts(() => this.attempts.values());
  }

  get settings(): CoordinatorSettings {
    return this.opts.settings;
  }

  get boundPort(): number {
    return this.port;
  }

  get isPaused(): boolean {
    return this.paused || this.diskFault !== null;
  }

  /** Why leasing is paused by a fault of the coordinator's disk, or null. */
  get outputFault(): string | null {
    return this.diskFault;
  }

  /** The error that ended the run (a damaged or deleted state file), if any. */
  get fatalError(): Error | null {
    return this.fatal;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Resumes from the state file, then serves on `address` (e.g. 127.0.0.1:0; local workers and
   * tunnels) and, when given, with TLS on `tls.address` (workers that dial in directly). Returns
   * the plain-text port.
   */
  async start(address: string, tls?: TlsIdentity & { address: string }): Promise<number> {
    const { store, logger, outDir } = this.opts;
    const owner = await claimOutputDir(outDir, { stateId: store.stateId, stateDir: this.opts.stateDir ?? '' }, this.opts.outputMode ?? 'refuse');
    this.shardOffset = owner.shardOffset;
    this.stateIno = statSync(store.path).ino;
    const requeued = store.shards.requeueAllLeased();
    const forgotten = this.actors.forgetPreviousRun('coordinator restarted');
    const stale = await removeStalePartials(outDir);
    // A shard renamed into place by a coordinator that died before marking it done is removed: it is queued again.
    const committed = store.shards.doneOutputNames();
    const halfPublished = await removeUncommittedShards(outDir, (name) => Number(name) <= owner.shardOffset || committed.has(name));
    if (requeued > 0 || stale > 0 || halfPublished.length > 0) {
      logger.info({ requeued, stale_partials: stale, half_published_removed: halfPublished, actors_forgotten: forgotten }, 'resumed from state file');
    }
    store.runs.start(this.runId, this.opts.outDir, this.opts.settings);
    this.server = createGrpcServer(this, this.opts.workerToken, MAX_MESSAGE_BYTES);
    this.port = await bindServer(this.server, address);
    if (tls) {
      const tlsPort = await bindServer(this.server, tls.address, tls);
      logger.info({ address: tls.address, port: tlsPort }, 'serving TLS for workers that dial in directly');
    }
    this.superviseTimer = setInterval(() => void this.supervise(), this.opts.superviseIntervalMs ?? 1000);
    this.superviseTimer.unref();
    logger.info({ run_id: this.runId, port: this.port, out: this.opts.outDir }, 'coordinator listening');
    return this.port;
  }

  /**
   * Serves one connection that did not come through the port: a swarm server's reverse tunnel
   * channel. Handing the channel to the gRPC server directly saves the loopback hop a forward to
   * the port would take (every byte written and read once more by this process; ~25% of the
   * coordinator's CPU per pair through the tunnel, bench/RESULTS.md). The same handlers and checks
   * apply: the worker token on every call, the receive limits, the windows.
   */
  serveConnection(connection: Duplex): void {
    if (!this.server) {
      connection.destroy();
      return;
    }
    this.injector ??= connectionInjector(this.server);
    this.injector.injectConnection(connection);
  }

  snapshot(): CoordinatorSnapshot {
    return this.snapshots.build({ paused: this.isPaused, draining: this.draining });
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    this.opts.logger.info({ paused }, paused ? 'leasing paused' : 'leasing resumed');
    this.emit('change');
  }

  /** Stop handing out shards; workers finish what they hold (heartbeats tell them to drain). */
  beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    this.opts.logger.info({ leased: this.opts.store.shards.leasedCount() }, 'draining: no new leases');
    this.emit('change');
  }

  /** True when no shard is queued or leased. */
  isDone(): boolean {
    return !this.opts.store.shards.hasOpenWork();
  }

  leasedCount(): number {
    return this.opts.store.shards.leasedCount();
  }

  /** Returns every lease still held (not counted as failures) and stops serving. */
  async stop(exitReason: string): Promise<void> {
    if (this.superviseTimer) clearInterval(this.superviseTimer);
    if (!this.fatal) {
      for (const attempt of [...this.attempts.values()]) {
        await this.giveBack(attempt.shardId, attempt.fencingToken, `returned at shutdown: ${exitReason}`, false);
      }
      this.opts.store.shards.requeueAllLeased();
      this.opts.store.runs.end(this.runId, exitReason);
    }
    for (const attempt of this.attempts.values()) await attempt.abort();
    this.attempts.clear();
    const server = this.server;
    this.server = null;
    this.injector = null;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      destroyConnections(server);
    }
    this.emit('stopped');
  }

  // ---- gRPC handlers -------------------------------------------------------------------------

  async register(req: RegisterRequest, ctx: CallContext): Promise<RegisterResponse> {
    const { store, logger } = this.opts;
    if (!ctx.session) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'register without a session (metadata x-cah-session): upgrade the worker');
    const actorId = req.actorId || `w-${req.host || 'unknown'}-${req.pid}-${randomBytes(2).toString('hex')}`;
    const session = digest(ctx.session);
    const known = this.guard(() => this.actors.get(actorId));
    if (known?.state === 'ALIVE' && this.actors.sessionOf(actorId) !== session) {
      // Another process holds this id: it is refused until that one is declared dead.
      throw new RpcError(grpc.status.ALREADY_EXISTS, `actor ${actorId} is alive on another connection`);
    }
    // Leases held under this id were dropped with the worker's old connection: they come back now.
    for (const lease of store.shards.leasesOf(actorId)) {
      await this.giveBack(lease.shardId, lease.fencingToken, `actor ${actorId} registered again`, false);
    }
    const kind = actorId.startsWith('local-') ? 'local' : actorId.startsWith('cah-') ? 'swarm' : 'remote';
    this.guard(() => this.actors.register(actorId, { kind, host: req.host || ctx.peer, pid: req.pid, version: req.version, session }));
    logger.info({ actor: actorId, host: req.host, pid: req.pid, version: req.version }, 'actor ALIVE');
    this.emit('change');
    return { actorId, settings: this.opts.settings.worker };
  }

  leaseShard(req: LeaseShardRequest, ctx: CallContext): LeaseShardResponse {
    return this.guard(() => {
      this.requireActor(req.actorId, ctx.session);
      if (this.isPaused || this.draining) return { hasShard: false, shard: null, retryAfterMs: 1000, drained: this.draining };
      const lease = this.opts.store.shards.lease(req.actorId, this.opts.settings.leaseMs);
      if (!lease) return { hasShard: false, shard: null, retryAfterMs: 1000, drained: this.isDone() };
      this.actors.leased(req.actorId, lease.shardId);
      this.opts.logger.info({ actor: req.actorId, shard: lease.shardId, attempt: lease.attempt }, 'shard leased');
      this.emit('change');
      return {
        hasShard: true,
        shard: {
          shardId: lease.shardId,
          source: lease.source,
          fencingToken: lease.fencingToken,
          attempt: lease.attempt,
        },
        retryAfterMs: 0,
        drained: false,
      };
    });
  }

  heartbeat(req: HeartbeatRequest, ctx: CallContext): HeartbeatResponse {
    const { store, settings } = this.opts;
    return this.guard(() => {
      this.requireActor(req.actorId, ctx.session);
      if (req.shards.length > MAX_REPORTED_SHARDS) {
        throw new RpcError(grpc.status.INVALID_ARGUMENT, `a heartbeat reports at most ${MAX_REPORTED_SHARDS} shards, got ${req.shards.length}`);
      }
      const current = req.shards[0];
      this.actors.heartbeat(req.actorId, {
        currentShardId: current ? current.shardId : null,
        candidates: req.shards.reduce((n, s) => n + s.candidates, 0),
        downloaded: req.shards.reduce((n, s) => n + s.downloaded, 0),
      });
      // Only the leases the worker reports are renewed; one it no longer reports (it dropped the
      // shard with a dead connection) comes back, once it is older than a heartbeat in flight.
      const held = req.shards.filter((s) => store.shards.holds(s.shardId, s.fencingToken, req.actorId));
      store.shards.renew(req.actorId, held, settings.leaseMs);
      const now = Date.now();
      const grace = Math.max(1000, 2 * settings.worker.heartbeatIntervalMs);
      for (const lease of store.shards.leasesOf(req.actorId)) {
        if (held.some((h) => h.shardId === lease.shardId) || (lease.leasedAt ?? 0) > now - grace) continue;
        // A state-file failure here is already recorded (fatal); the heartbeat itself still answers.
        this.giveBack(lease.shardId, lease.fencingToken, `actor ${req.actorId} no longer works on it`, false).catch(() => undefined);
      }
      this.snapshots.recordProgress(req.actorId, held);
      const revokedShardIds = req.shards.filter((s) => !held.includes(s)).map((s) => s.shardId);
      return { revokedShardIds, drain: this.draining };
    });
  }

  claimKeys(req: ClaimKeysRequest, ctx: CallContext): ClaimKeysResponse {
    return this.guard(() => {
      this.requireActor(req.actorId, ctx.session);
      this.requireLease(req.shardId, req.fencingToken, req.actorId);
      return { newKeys: this.opts.store.dedup.claim(req.shardId, req.keys) };
    });
  }

  chunkLimitReached(path: string): void {
    this.opts.logger.warn({ path }, 'stream reset: it held too many small HTTP/2 DATA frames (a broken or hostile worker)');
  }

  streamSamples(stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>): void {
    const session = sessionOf(stream.metadata);
    serveSampleStream(stream, {
      budget: this.creditBudget,
      filter: this.opts.filter,
      resolveAttempt: async (first) => {
        this.guard(() => this.requireActor(first.actorId, session));
        return this.attemptFor(first.actorId, first.shardId, first.fencingToken).catch((err: unknown) => {
          this.faultOf(err);
          throw err;
        });
      },
      onError: (err) => this.opts.logger.warn({ err: err.message }, 'sample stream refused'),
    });
  }

  async completeShard(req: CompleteShardRequest, ctx: CallContext): Promise<CompleteShardResponse> {
    const { store, settings, logger } = this.opts;
    this.guard(() => {
      this.requireActor(req.actorId, ctx.session);
      this.requireLease(req.shardId, req.fencingToken, req.actorId);
    });
    let attempt: ShardAttempt;
    let committed;
    try {
      attempt = await this.attemptFor(req.actorId, req.shardId, req.fencingToken);
      committed = await attempt.finish(
        req.samplesSent,
        { extraction: req.extraction, sourceErrors: req.sourceErrors },
        settings.completeTimeoutMs,
      );
      if (!store.shards.holds(req.shardId, req.fencingToken, req.actorId)) {
        throw new RpcError(grpc.status.FAILED_PRECONDITION, `lease of shard ${req.shardId} was lost while writing`);
      }
      // From here the publish decides: nothing returns this lease until the shard is done or given back.
      this.publishing.add(req.shardId);
      await attempt.publish();
    } catch (err) {
      this.publishing.delete(req.shardId);
      if (err instanceof RpcError) {
        await this.dropAttempt(req.shardId, req.fencingToken);
        throw err;
      }
      const message = err instanceof Error ? err.message : String(err);
      const fault = this.faultOf(err);
      await this.giveBack(req.shardId, req.fencingToken, message, !fault);
      throw new RpcError(fault ? grpc.status.UNAVAILABLE : grpc.status.ABORTED, message);
    }
    this.attempts.delete(req.shardId);
    const extraction = req.extraction;
    let done: boolean;
    try {
      // The done-mark and the shard's error counts in one commit, which must survive a power cut.
      done = this.guard(() =>
        store.commitUnsynced(() => {
          const marked = store.shards.complete(req.shardId, req.fencingToken, {
            candidates: extraction?.candidates ?? attempt.counts.received,
            duplicates: extraction?.duplicates ?? 0,
            downloaded: attempt.counts.downloaded,
            failed: attempt.counts.failed,
            kept: attempt.counts.kept,
            filteredOut: attempt.counts.filteredOut,
            bytesIn: attempt.counts.bytesIn,
            outputBytes: committed.tarBytes,
            outputShard: committed.shardName,
          });
          if (marked) store.runs.addErrors(attempt.errors);
          return marked;
        }),
      );
    } finally {
      this.publishing.delete(req.shardId);
    }
    if (!done) throw new RpcError(grpc.status.FAILED_PRECONDITION, `lease of shard ${req.shardId} was lost while writing`);
    // The worker hears "done" only once the mark is on disk.
    try {
      await store.synced();
    } catch (err) {
      this.faultOf(new StateFileError(`state file ${store.path} could not be synced: ${(err as Error).message}: stopping (\`cah state check\`)`));
      throw new RpcError(grpc.status.UNAVAILABLE, 'the coordinator is stopping: its state file failed');
    }
    this.actors.released(req.actorId, req.shardId);
    this.snapshots.recordShardDone(attempt);
    logger.info(
      {
        actor: req.actorId,
        shard: req.shardId,
        output: committed.shardName,
        samples: attempt.counts.received,
        kept: attempt.counts.kept,
        filtered_out: attempt.counts.filteredOut,
        failed: attempt.counts.failed,
      },
      'shard done',
    );
    this.emit('change');
    return { kept: attempt.counts.kept, outputShard: committed.shardName };
  }

  async failShard(req: FailShardRequest, ctx: CallContext): Promise<FailShardResponse> {
    this.guard(() => {
      this.requireActor(req.actorId, ctx.session);
      this.requireLease(req.shardId, req.fencingToken, req.actorId);
    });
    const returned = await this.giveBack(req.shardId, req.fencingToken, req.error, true);
    return { willRetry: returned?.nowState === 'queued' };
  }

  // ---- supervision ---------------------------------------------------------------------------

  /**
   * An actor died (its supervisor saw it: missed heartbeats, a local process exit, a swarm server
   * lost): RESTARTING or DEAD, and its leases come back (counted as failures of those attempts).
   */
  async actorDied(actorId: string, cause: string, restarting: boolean): Promise<void> {
    const { store, logger } = this.opts;
    this.guard(() => this.actors.died(actorId, cause, restarting));
    logger.warn({ actor: actorId, cause, restarting }, restarting ? 'actor RESTARTING' : 'actor DEAD');
    for (const lease of store.shards.leasesOf(actorId)) {
      await this.giveBack(lease.shardId, lease.fencingToken, `actor ${actorId} died: ${cause}`, true);
    }
    this.emit('change');
  }

  /**
   * The one way a lease comes back: the attempt is dropped (its temp files removed), the shard
   * is queued again or, out of retries, failed with its dedup keys released (other shards may
   * then keep those URLs), and the owner's current shard is cleared. Returns null when the lease
   * was no longer current (or is being published).
   */
  private async giveBack(shardId: number, fencingToken: number | null, error: string, countsAsFailure: boolean): Promise<ReturnedLease | null> {
    if (this.publishing.has(shardId)) return null;
    const { store, settings, logger } = this.opts;
    const returned = this.guard(() =>
      store.shards.returnLease(shardId, fencingToken, error, {
        countsAsFailure,
        maxRetries: settings.maxRetries,
        retryBackoffMs: settings.retryBackoffMs,
      }),
    );
    const attempt = this.attempts.get(shardId);
    if (attempt && (fencingToken === null || attempt.fencingToken === fencingToken || returned)) {
      this.attempts.delete(shardId);
      await attempt.abort();
    }
    if (!returned) return null;
    if (returned.owner) this.actors.released(returned.owner, shardId);
    if (returned.nowState === 'failed') {
      const released = store.dedup.release(shardId);
      logger.error({ shard: shardId, error, keys_released: released }, 'shard failed: out of retries');
    } else {
      logger.warn({ shard: shardId, error, counted: countsAsFailure }, 'shard lease returned: will retry');
    }
    this.emit('change');
    return returned;
  }

  private async supervise(): Promise<void> {
    const { store, settings } = this.opts;
    try {
      this.checkStateFile();
      const now = Date.now();
      for (const actor of this.actors.silentSince(now - settings.heartbeatTimeoutMs)) {
        await this.actorDied(actor.id, `missed heartbeats for ${Math.round((now - (actor.lastHeartbeat ?? now)) / 1000)} s`, false);
      }
      for (const lease of store.shards.overdue(settings.maxLeaseAgeMs, now)) {
        await this.giveBack(lease.shardId, lease.fencingToken, lease.reason, true);
      }
      this.actors.prune(KEEP_DEAD_ACTORS);
      if (this.diskFault) await this.probeOutput();
      this.snapshots.tick();
      this.emit('tick');
    } catch (err) {
      if (!this.fatal) this.faultOf(err);
    }
  }

  /** A deleted or replaced state file would lose every later update silently. */
  private checkStateFile(): void {
    let ino: number | null = null;
    try {
      ino = statSync(this.opts.store.path).ino;
    } catch {
      ino = null;
    }
    if (ino === null || ino !== this.stateIno) {
      throw new StateFileError(`state file ${this.opts.store.path} was deleted or replaced while the coordinator ran: stopping (restore it from a backup, or start afresh)`);
    }
  }

  /**
   * Sorts an error of the coordinator's own: a disk error pauses leasing until the output
   * directory is writable again; a state-file error ends the run ('fatal'). Returns true for
   * either (the attempt is not the shard's fault).
   */
  private faultOf(err: unknown): boolean {
    if (err instanceof StateFileError || isSqliteError(err)) {
      if (!this.fatal) {
        this.fatal = err instanceof StateFileError ? err : new StateFileError(`state file ${this.opts.store.path} failed: ${(err as Error).message}: stopping (\`cah state check\`)`);
        this.opts.logger.error({ err: this.fatal.message }, 'state file failed: stopping');
        this.emit('fatal', this.fatal);
      }
      return true;
    }
    if (isDiskFault(err)) {
      if (!this.diskFault) {
        this.diskFault = (err as Error).message;
        this.opts.logger.error({ err: this.diskFault, out: this.opts.outDir }, 'cannot write the output directory: leasing paused until it is writable');
        this.emit('change');
      }
      return true;
    }
    return false;
  }

  /** Tries a write under the output directory; leasing resumes once one succeeds. */
  async probeOutput(): Promise<boolean> {
    if (this.probing) return false;
    this.probing = true;
    const probe = join(this.opts.outDir, PARTIAL_DIR, '.write-probe');
    try {
      await writeFile(probe, Buffer.alloc(64 * 1024));
      await rm(probe, { force: true });
      if (this.diskFault) {
        this.opts.logger.info({ out: this.opts.outDir }, 'output directory writable again: leasing resumed');
        this.diskFault = null;
        this.emit('change');
      }
      return true;
    } catch {
      await rm(probe, { force: true }).catch(() => undefined);
      return false;
    } finally {
      this.probing = false;
    }
  }

  /** Runs a state-file operation; a SQLite failure ends the run instead of being charged to a shard. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof RpcError || !this.faultOf(err) || !isSqliteError(err)) throw err;
      throw new RpcError(grpc.status.UNAVAILABLE, 'the coordinator is stopping: its state file failed');
    }
  }

  private requireActor(actorId: string, session: string): void {
    const actor = this.actors.get(actorId);
    if (!actor || actor.state !== 'ALIVE') {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `actor ${actorId} is not ALIVE: register again`, 'register-again');
    }
    if (this.actors.sessionOf(actorId) !== digest(session)) {
      throw new RpcError(grpc.status.PERMISSION_DENIED, `actor ${actorId} is registered by another connection`);
    }
  }

  private requireLease(shardId: number, fencingToken: number, actorId: string): void {
    if (!this.opts.store.shards.holds(shardId, fencingToken, actorId)) {
      throw new RpcError(
        grpc.status.FAILED_PRECONDITION,
        `stale lease: shard ${shardId} fencing token ${fencingToken} is not a current lease of ${actorId}`,
        'stale-lease',
      );
    }
  }

  private async attemptFor(actorId: string, shardId: number, fencingToken: number): Promise<ShardAttempt> {
    if (!this.opts.store.shards.holds(shardId, fencingToken, actorId)) {
      throw new StaleLeaseError(`stale lease: shard ${shardId} fencing token ${fencingToken} is not a current lease of ${actorId}`);
    }
    const existing = this.attempts.get(shardId);
    if (existing && existing.fencingToken === fencingToken) return existing;
    if (existing) await this.dropAttempt(shardId, existing.fencingToken);
    let opening = this.opening.get(shardId);
    if (!opening) {
      const row = this.opts.store.shards.get(shardId);
      opening = ShardAttempt.open({
        shardId,
        shardNumber: shardId + this.shardOffset,
        fencingToken,
        actorId,
        source: row?.source ?? '',
        outDir: this.opts.outDir,
        filter: this.opts.filter,
        ...(this.opts.extraColumns ? { extraColumns: this.opts.extraColumns } : {}),
        ...(this.opts.embeddingDim ? { embeddingDim: this.opts.embeddingDim } : {}),
      });
      this.opening.set(shardId, opening);
      opening.then(
        (a) => {
          this.opening.delete(shardId);
          this.attempts.set(shardId, a);
        },
        () => this.opening.delete(shardId),
      );
    }
    const attempt = await opening;
    if (attempt.fencingToken !== fencingToken) throw new StaleLeaseError(`stale lease for shard ${shardId}`);
    return attempt;
  }

  private async dropAttempt(shardId: number, fencingToken: number | null): Promise<void> {
    const attempt = this.attempts.get(shardId);
    if (!attempt || (fencingToken !== null && attempt.fencingToken !== fencingToken)) return;
    this.attempts.delete(shardId);
    await attempt.abort();
  }
}
