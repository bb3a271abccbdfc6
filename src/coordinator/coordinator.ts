import type { ExtraColumn } from '../filter/filter.js';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { FilterStage } from '../filter/stage.js';
import { removeStalePartials } from '../output/shard-writer.js';
import type { Store } from '../store/store.js';
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
import { RpcError, bindServer, createGrpcServer, type CoordinatorHandlers, type TlsIdentity } from './service.js';
import { ShardAttempt } from './shard-attempt.js';
import { StaleLeaseError, serveSampleStream } from './sample-stream.js';
import type { CoordinatorSettings } from './settings.js';
import { SnapshotBuilder } from './snapshot-builder.js';
import type { CoordinatorSnapshot } from './snapshot.js';

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
}

/**
 * The head: owns the gRPC service, hands out shards under leases, supervises actors, and turns the
 * samples streamed by workers into committed output shards. All persistent state goes through the
 * Store; in memory it keeps only the shard attempts in progress.
 */
export class Coordinator extends EventEmitter implements CoordinatorHandlers {
  readonly runId = `run-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
  private server: grpc.Server | null = null;
  private superviseTimer: NodeJS.Timeout | null = null;
  private readonly attempts = new Map<number, ShardAttempt>();
  private readonly opening = new Map<number, Promise<ShardAttempt>>();
  private paused = false;
  private draining = false;
  private port = 0;
  readonly snapshots: SnapshotBuilder;

  constructor(private readonly opts: CoordinatorOptions) {
    super();
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
    return this.paused;
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
    const { store, logger } = this.opts;
    const requeued = store.shards.requeueAllLeased();
    const forgotten = store.actors.markAllDead('coordinator restarted');
    const stale = await removeStalePartials(this.opts.outDir);
    if (requeued > 0 || stale > 0) {
      logger.info({ requeued, stale_partials: stale, actors_forgotten: forgotten }, 'resumed from state file');
    }
    store.runs.start(this.runId, this.opts.outDir, this.opts.settings);
    this.server = createGrpcServer(this, this.opts.workerToken, MAX_MESSAGE_BYTES);
    this.port = await bindServer(this.server, address);
    if (tls) {
      const tlsPort = await bindServer(this.server, tls.address, tls);
      logger.info({ address: tls.address, port: tlsPort }, 'serving TLS for workers that dial in directly');
    }
    this.superviseTimer = setInterval(() => this.supervise(), this.opts.superviseIntervalMs ?? 1000);
    this.superviseTimer.unref();
    logger.info({ run_id: this.runId, port: this.port, out: this.opts.outDir }, 'coordinator listening');
    return this.port;
  }

  snapshot(): CoordinatorSnapshot {
    return this.snapshots.build({ paused: this.paused, draining: this.draining });
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
    this.opts.logger.info({ leased: this.opts.store.shards.counts().leased }, 'draining: no new leases');
    this.emit('change');
  }

  /** True when no shard is queued or leased. */
  isDone(): boolean {
    const counts = this.opts.store.shards.counts();
    return counts.queued === 0 && counts.leased === 0;
  }

  leasedCount(): number {
    return this.opts.store.shards.counts().leased;
  }

  /** Returns every lease still held (not counted as failures) and stops serving. */
  async stop(exitReason: string): Promise<void> {
    if (this.superviseTimer) clearInterval(this.superviseTimer);
    for (const attempt of this.attempts.values()) {
      this.opts.store.shards.returnLease(attempt.shardId, attempt.fencingToken, `returned at shutdown: ${exitReason}`, {
        countsAsFailure: false,
        maxRetries: this.opts.settings.maxRetries,
      });
      await attempt.abort();
    }
    this.attempts.clear();
    this.opts.store.shards.requeueAllLeased();
    this.opts.store.runs.end(this.runId, exitReason);
    const server = this.server;
    this.server = null;
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
    }
    this.emit('stopped');
  }

  // ---- gRPC handlers -------------------------------------------------------------------------

  register(req: RegisterRequest, peer: string): RegisterResponse {
    const actorId = req.actorId || `w-${req.host || 'unknown'}-${req.pid}-${randomBytes(2).toString('hex')}`;
    const kind = actorId.startsWith('local-') ? 'local' : actorId.startsWith('cah-') ? 'swarm' : 'remote';
    this.opts.store.actors.register(actorId, { kind, host: req.host || peer, pid: req.pid, version: req.version });
    this.opts.logger.info({ actor: actorId, host: req.host, pid: req.pid, version: req.version }, 'actor ALIVE');
    this.emit('change');
    return { actorId, settings: this.opts.settings.worker };
  }

  leaseShard(req: LeaseShardRequest): LeaseShardResponse {
    this.requireAlive(req.actorId);
    const drained = this.isDone();
    if (this.paused || this.draining) return { hasShard: false, shard: null, retryAfterMs: 1000, drained: this.draining };
    const lease = this.opts.store.shards.lease(req.actorId, this.opts.settings.leaseMs);
    if (!lease) return { hasShard: false, shard: null, retryAfterMs: 1000, drained };
    this.opts.store.actors.setCurrentShard(req.actorId, lease.shardId);
    this.opts.logger.info(
      { actor: req.actorId, shard: lease.shardId, attempt: lease.attempt, fencing_token: lease.fencingToken },
      'shard leased',
    );
    this.emit('change');
    return {
      hasShard: true,
      shard: {
        shardId: lease.shardId,
        source: lease.source,
        fencingToken: lease.fencingToken,
        leaseExpiresAtMs: lease.leaseExpiresAt,
        attempt: lease.attempt,
      },
      retryAfterMs: 0,
      drained: false,
    };
  }

  heartbeat(req: HeartbeatRequest): HeartbeatResponse {
    const { store, settings } = this.opts;
    const current = req.shards[0];
    const alive = store.actors.heartbeat(req.actorId, {
      currentShardId: current ? current.shardId : null,
      candidates: req.shards.reduce((n, s) => n + s.candidates, 0),
      downloaded: req.shards.reduce((n, s) => n + s.downloaded, 0),
    });
    if (!alive) throw new RpcError(grpc.status.FAILED_PRECONDITION, `actor ${req.actorId} is not ALIVE: register again`);
    store.shards.renew(req.actorId, settings.leaseMs);
    this.snapshots.recordProgress(req.actorId, req.shards);
    const revokedShardIds = req.shards.filter((s) => !store.shards.holds(s.shardId, s.fencingToken)).map((s) => s.shardId);
    return { revokedShardIds, drain: this.draining };
  }

  claimKeys(req: ClaimKeysRequest): ClaimKeysResponse {
    this.requireLease(req.shardId, req.fencingToken);
    return { newKeys: this.opts.store.dedup.claim(req.shardId, req.keys) };
  }

  streamSamples(stream: grpc.ServerDuplexStream<SampleMessage, CreditGrant>): void {
    serveSampleStream(stream, {
      window: this.opts.settings.creditWindow,
      filter: this.opts.filter,
      resolveAttempt: (first) => this.attemptFor(first.actorId, first.shardId, first.fencingToken),
      onError: (err) => this.opts.logger.warn({ err: err.message }, 'sample stream refused'),
    });
  }

  async completeShard(req: CompleteShardRequest): Promise<CompleteShardResponse> {
    const { store, settings, logger } = this.opts;
    this.requireLease(req.shardId, req.fencingToken);
    const attempt = await this.attemptFor(req.actorId, req.shardId, req.fencingToken);
    let committed;
    try {
      committed = await attempt.finish(
        req.samplesSent,
        { extraction: req.extraction, sourceErrors: req.sourceErrors },
        settings.completeTimeoutMs,
      );
    } catch (err) {
      await this.dropAttempt(req.shardId, req.fencingToken);
      const message = err instanceof Error ? err.message : String(err);
      store.shards.returnLease(req.shardId, req.fencingToken, message, { countsAsFailure: true, maxRetries: settings.maxRetries });
      throw new RpcError(grpc.status.ABORTED, message);
    }
    this.attempts.delete(req.shardId);
    const extraction = req.extraction;
    const done = store.shards.complete(req.shardId, req.fencingToken, {
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
    if (!done) throw new RpcError(grpc.status.FAILED_PRECONDITION, `lease of shard ${req.shardId} was lost while writing`);
    store.runs.addErrors(attempt.errors);
    store.actors.setCurrentShard(req.actorId, null);
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

  async failShard(req: FailShardRequest): Promise<FailShardResponse> {
    this.requireLease(req.shardId, req.fencingToken);
    await this.dropAttempt(req.shardId, req.fencingToken);
    const returned = this.opts.store.shards.returnLease(req.shardId, req.fencingToken, req.error, {
      countsAsFailure: true,
      maxRetries: this.opts.settings.maxRetries,
    });
    this.afterReturn(returned?.nowState ?? 'queued', req.shardId, req.error);
    this.opts.store.actors.setCurrentShard(req.actorId, null);
    return { willRetry: returned?.nowState === 'queued' };
  }

  // ---- supervision ---------------------------------------------------------------------------

  /** Declares an actor DEAD and returns its leases (counted as failures of those attempts). */
  async actorDied(actorId: string, cause: string, restarting: boolean): Promise<void> {
    const { store, settings, logger } = this.opts;
    if (restarting) store.actors.markRestarting(actorId, cause);
    else store.actors.markDead(actorId, cause);
    logger.warn({ actor: actorId, cause, restarting }, restarting ? 'actor RESTARTING' : 'actor DEAD');
    for (const shardId of store.shards.leasedBy(actorId)) {
      const attempt = this.attempts.get(shardId);
      const token = attempt?.fencingToken ?? null;
      await this.dropAttempt(shardId, token);
      const returned = store.shards.returnLease(shardId, token, `actor ${actorId} died: ${cause}`, {
        countsAsFailure: true,
        maxRetries: settings.maxRetries,
      });
      if (returned) this.afterReturn(returned.nowState, shardId, cause);
    }
    this.emit('change');
  }

  private supervise(): void {
    const { store, settings } = this.opts;
    const now = Date.now();
    for (const actor of store.actors.silentSince(now - settings.heartbeatTimeoutMs)) {
      void this.actorDied(actor.id, `missed heartbeats for ${Math.round((now - (actor.lastHeartbeat ?? now)) / 1000)} s`, false);
    }
    for (const returned of store.shards.expireLeases(settings.maxRetries, now)) {
      void this.dropAttempt(returned.shardId, null);
      this.afterReturn(returned.nowState, returned.shardId, 'lease expired');
    }
    this.snapshots.tick();
    this.emit('tick');
  }

  private afterReturn(nowState: string, shardId: number, error: string): void {
    if (nowState === 'failed') {
      const released = this.opts.store.dedup.release(shardId);
      this.opts.logger.error({ shard: shardId, error, keys_released: released }, 'shard failed: out of retries');
    } else {
      this.opts.logger.warn({ shard: shardId, error }, 'shard lease returned: will retry');
    }
    this.emit('change');
  }

  private requireAlive(actorId: string): void {
    const actor = this.opts.store.actors.get(actorId);
    if (!actor || actor.state !== 'ALIVE') {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `actor ${actorId} is not ALIVE: register again`);
    }
  }

  private requireLease(shardId: number, fencingToken: number): void {
    if (!this.opts.store.shards.holds(shardId, fencingToken)) {
      throw new RpcError(
        grpc.status.FAILED_PRECONDITION,
        `stale lease: shard ${shardId} fencing token ${fencingToken} is no longer current`,
      );
    }
  }

  private async attemptFor(actorId: string, shardId: number, fencingToken: number): Promise<ShardAttempt> {
    if (!this.opts.store.shards.holds(shardId, fencingToken)) {
      throw new StaleLeaseError(`stale lease: shard ${shardId} fencing token ${fencingToken} is no longer current`);
    }
    const existing = this.attempts.get(shardId);
    if (existing && existing.fencingToken === fencingToken) return existing;
    if (existing) await this.dropAttempt(shardId, existing.fencingToken);
    let opening = this.opening.get(shardId);
    if (!opening) {
      const row = this.opts.store.shards.get(shardId);
      opening = ShardAttempt.open({
        shardId,
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
