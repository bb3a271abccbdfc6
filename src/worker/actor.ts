import * as grpc from '@grpc/grpc-js';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Candidate } from '../warc/candidate.js';
import { extractCandidates, newExtractionCounts, noRecordsMessage, type ExtractionCounts } from '../warc/extract.js';
import { openSource, type SourceProgress } from '../warc/open-source.js';
import { sampleToWire, type SampleRecord } from '../output/sample.js';
import type { RegisterResponse, ShardProgress, WireShard, WorkerSettings } from '../wire/contract.js';
import { refusalReason } from '../wire/reasons.js';
import { CahError } from '../errors.js';
import { VERSION } from '../version.js';
import { CreditWallet } from './credits.js';
import { SampleBatcher } from './sample-batcher.js';
import { ImageFetcher, type FetchOptions } from './fetcher.js';
import { processCandidates } from './process.js';
import { sourceGuard } from './ssrf.js';
import type { ResizeMode, ResizeOptions } from './resize.js';
import { CoordinatorClient, isStatus } from './rpc.js';

const CLAIM_BATCH = 256;
const MAX_SOURCE_ERRORS = 50;

export interface WorkerOptions {
  coordinator: string;
  /** The coordinator's certificate (PEM) for TLS; none: plain text (local workers, SSH tunnels). */
  coordinatorCa?: Buffer;
  token: string;
  actorId?: string;
  /** Exit 0 once the coordinator says no shard is queued or leased (batch mode, local workers). */
  exitWhenDrained: boolean;
  /** With exitWhenDrained: how long the coordinator may stay unreachable before the worker gives up (default 2 min). */
  giveUpAfterMs?: number;
  logger: Logger;
  signal?: AbortSignal;
}

/** The counters the worker reports in its heartbeats, and how far it has read the source. */
type ShardProgressCounters = Pick<ShardProgress, 'candidates' | 'duplicates' | 'downloaded' | 'failed' | 'bytesIn'> & { source: SourceProgress };

/** Raised when the coordinator no longer recognises us (restarted, or declared us dead): register again. */
class ReRegister extends CahError {
  constructor(message: string) {
    super('CAH_REGISTER_AGAIN', message);
  }
}

/** A batch worker's coordinator stayed unreachable: the run is over (or gone); exit 1. */
class CoordinatorGone extends CahError {
  constructor(message: string) {
    super('CAH_COORDINATOR_GONE', message);
  }
}

export const GIVE_UP_AFTER_MS = 120_000;

/** How a worker's run ended; `cah worker` turns it into the exit code. */
export type WorkerEnd = 'drained' | 'stopped' | 'refused' | 'coordinator-gone';

/**
 * The scraper actor: registers, leases shards, extracts candidates, claims their keys (run-wide
 * dedup), downloads and resizes, streams samples up under credits, and completes the shard.
 * Survives coordinator restarts by registering again; a lease it lost is abandoned, never completed.
 */
export class WorkerActor {
  private readonly client: CoordinatorClient;
  private actorId = '';
  private settings: WorkerSettings | null = null;
  private fetcher: ImageFetcher | null = null;
  private current: { shard: WireShard; progress: ShardProgressCounters; abort: AbortController } | null = null;
  private draining = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: WorkerOptions) {
    this.client = new CoordinatorClient(opts.coordinator, opts.token, opts.coordinatorCa);
  }

  /** Runs until drained or stopped by the signal, refused (UNAUTHENTICATED), or, with --exit-when-drained, its coordinator unreachable for --give-up-after (default 2 min). */
  async run(): Promise<WorkerEnd> {
    const { logger, signal } = this.opts;
    signal?.addEventListener('abort', () => this.current?.abort.abort(new Error('worker stopping')), { once: true });
    try {
      while (!signal?.aborted) {
        try {
          await this.registerWithRetry();
          const finished = await this.leaseLoop();
          if (finished) return 'drained';
        } catch (err) {
          if (err instanceof CoordinatorGone) {
            logger.error({ err: err.message }, 'coordinator gone');
            return 'coordinator-gone';
          }
          if (isStatus(err, grpc.status.UNAUTHENTICATED)) {
            logger.error({ coordinator: this.opts.coordinator }, 'coordinator refused the worker token (UNAUTHENTICATED): check --token / CAH_WORKER_TOKEN');
            return 'refused';
          }
          if (
            err instanceof ReRegister ||
            isStatus(err, grpc.status.UNAVAILABLE) ||
            isStatus(err, grpc.status.DEADLINE_EXCEEDED) ||
            isStatus(err, grpc.status.FAILED_PRECONDITION) ||
            isStatus(err, grpc.status.PERMISSION_DENIED)
          ) {
            logger.warn({ err: (err as Error).message }, 'lost the coordinator: registering again');
            await sleep(500, undefined, { signal }).catch(() => undefined);
            continue;
          }
          throw err;
        }
      }
      return 'stopped';
    } finally {
      this.stopHeartbeats();
      await this.fetcher?.close();
      this.client.close();
    }
  }

  private async registerWithRetry(): Promise<void> {
    const { logger, signal } = this.opts;
    let delay = 250;
    const since = Date.now();
    for (;;) {
      try {
        const res: RegisterResponse = await this.client.register({
          version: VERSION,
          host: hostname(),
          pid: process.pid,
          actorId: this.opts.actorId ?? this.actorId,
        });
        if (!res.settings) throw new CahError('CAH_PROTOCOL', `coordinator ${this.opts.coordinator} answered Register without settings: is it a cah coordinator of this version?`);
        this.actorId = res.actorId;
        this.configure(res.settings);
        logger.info({ actor: this.actorId, coordinator: this.opts.coordinator }, 'registered: ALIVE');
        this.startHeartbeats();
        return;
      } catch (err) {
        const taken = isStatus(err, grpc.status.ALREADY_EXISTS);
        if (!taken && !isStatus(err, grpc.status.UNAVAILABLE) && !isStatus(err, grpc.status.DEADLINE_EXCEEDED)) throw err;
        if (signal?.aborted) throw err;
        if (this.opts.exitWhenDrained && !taken && Date.now() - since > (this.opts.giveUpAfterMs ?? GIVE_UP_AFTER_MS)) {
          // A batch worker whose coordinator finished (or is gone for good) must not dial it forever.
          throw new CoordinatorGone(`coordinator ${this.opts.coordinator} unreachable for ${Math.round((Date.now() - since) / 1000)} s: giving up (--exit-when-drained)`);
        }
        if (taken) logger.warn({ err: (err as Error).message, retry_ms: delay }, 'actor id still alive on another connection: waiting until the coordinator declares it dead');
        else logger.warn({ coordinator: this.opts.coordinator, retry_ms: delay }, 'coordinator unreachable: retrying');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        // Capped low: a coordinator restart takes seconds, and registering is a cheap call.
        delay = Math.min(delay * 2, 3000);
      }
    }
  }

  private configure(settings: WorkerSettings): void {
    this.settings = settings;
    if (this.fetcher) return;
    const fetchOptions: FetchOptions = {
      maxInFlight: settings.maxInFlight,
      perHostConcurrency: settings.perHostConcurrency,
      perHostRps: settings.perHostRps,
      connectTimeoutMs: settings.connectTimeoutMs,
      totalTimeoutMs: settings.downloadTimeoutMs,
      maxRedirects: settings.maxRedirects,
      maxBytes: settings.maxImageBytes,
      allowLoopback: settings.allowLoopback,
      respectOptOut: settings.respectOptOut,
      userAgent: `cah/${VERSION} (image-caption dataset crawler; respects X-Robots-Tag noai)`,
    };
    this.fetcher = new ImageFetcher(fetchOptions);
  }

  /** Returns true when the worker should exit (drained). */
  private async leaseLoop(): Promise<boolean> {
    const { signal } = this.opts;
    while (!signal?.aborted) {
      if (this.draining && this.opts.exitWhenDrained) return true;
      const res = await this.client.leaseShard({ actorId: this.actorId });
      if (!res.hasShard || !res.shard) {
        if (res.drained && (this.opts.exitWhenDrained || this.draining)) return true;
        await sleep(Math.max(100, res.retryAfterMs), undefined, { signal }).catch(() => undefined);
        continue;
      }
      await this.processShard(res.shard);
    }
    return false;
  }

  private async processShard(shard: WireShard): Promise<void> {
    const { logger } = this.opts;
    const abort = new AbortController();
    // Every download in flight listens on the shard's signal: up to maxInFlight of them.
    setMaxListeners((this.settings?.maxInFlight ?? 0) + 64, abort.signal);
    const progress: ShardProgressCounters = {
      candidates: 0,
      duplicates: 0,
      downloaded: 0,
      failed: 0,
      bytesIn: 0,
      source: { bytesRead: 0, bytesTotal: null },
    };
    this.current = { shard, progress, abort };
    const log = logger.child({ shard: shard.shardId, attempt: shard.attempt });
    log.info({ source: shard.source }, 'shard started');
    const counts = newExtractionCounts();
    const sourceErrors: string[] = [];
    const noteSourceError = (message: string): void => {
      if (sourceErrors.length < MAX_SOURCE_ERRORS) sourceErrors.push(message);
    };
    try {
      let input;
      try {
        const guard = sourceGuard({ allowLoopback: this.settings!.allowLoopback, allowPrivate: this.settings!.allowPrivateSources });
        // Garbage after complete gzip members ends the input there: a source error of a shard that completes.
        input = await openSource(shard.source, { signal: abort.signal, guard, progress: progress.source, onError: noteSourceError });
      } catch (err) {
        const message = `cannot read ${shard.source}: ${(err as Error).message}`;
        log.warn({ err: message }, 'shard source unreadable');
        await this.client.failShard({ actorId: this.actorId, shardId: shard.shardId, fencingToken: shard.fencingToken, error: message });
        return;
      }
      const candidates = extractCandidates(input, this.extractOptions(), counts, noteSourceError);
      const claimed = this.claim(shard, candidates, counts, progress);
      const samples = processCandidates(claimed, this.fetcher!, this.resizeOptions(), {
        signal: abort.signal,
        maxInFlight: this.settings!.maxInFlight,
        urlRetries: this.settings!.urlRetries,
      });
      const sent = await this.stream(shard, samples, progress, abort);
      if (abort.signal.aborted) throw abort.signal.reason ?? new Error('shard aborted');
      if (counts.records === 0) throw new Error(noRecordsMessage(shard.source, sourceErrors));
      const res = await this.client.completeShard({
        actorId: this.actorId,
        shardId: shard.shardId,
        fencingToken: shard.fencingToken,
        samplesSent: sent,
        extraction: { ...counts },
        sourceErrors,
      });
      log.info({ samples: sent, kept: res.kept, output: res.outputShard }, 'shard completed');
    } catch (err) {
      if (abort.signal.aborted && isStatus(abort.signal.reason, grpc.status.UNAVAILABLE)) {
        // The link dropped mid-stream: the lease is still ours (heartbeats renew it), so hand the shard back for a retry.
        log.warn({ err: (err as Error).message }, 'sample stream lost: handing the shard back');
        for (let i = 0; i < 10; i++) {
          const handed = await this.client.failShard({ actorId: this.actorId, shardId: shard.shardId, fencingToken: shard.fencingToken, error: `sample stream lost: ${(err as Error).message}` }).then(
            () => true,
            (e: unknown) => !isStatus(e, grpc.status.UNAVAILABLE),
          );
          if (handed) break;
          await sleep(500);
        }
        return;
      }
      if (isStatus(err, grpc.status.FAILED_PRECONDITION) || abort.signal.aborted) {
        log.warn({ err: (err as Error).message }, 'shard abandoned: lease no longer ours');
        if (isStatus(err, grpc.status.FAILED_PRECONDITION) && refusalReason(err) === 'register-again') {
          throw new ReRegister((err as Error).message);
        }
        return;
      }
      // A lost connection is not the shard's fault: register again (the coordinator takes the lease back).
      if (isStatus(err, grpc.status.UNAVAILABLE) || isStatus(err, grpc.status.DEADLINE_EXCEEDED) || isStatus(err, grpc.status.UNAUTHENTICATED)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      log.error({ err: message }, 'shard failed');
      await this.client
        .failShard({ actorId: this.actorId, shardId: shard.shardId, fencingToken: shard.fencingToken, error: message })
        .catch(() => undefined);
    } finally {
      abort.abort(new Error('shard finished'));
      this.current = null;
    }
  }

  /** Run-wide dedup: only candidates whose keys the coordinator grants to this shard go on. */
  private async *claim(
    shard: WireShard,
    candidates: AsyncIterable<Candidate>,
    counts: ExtractionCounts,
    progress: ShardProgressCounters,
  ): AsyncGenerator<Candidate> {
    let batch: Candidate[] = [];
    const flush = async function* (this: WorkerActor): AsyncGenerator<Candidate> {
      const res = await this.client.claimKeys({
        actorId: this.actorId,
        shardId: shard.shardId,
        fencingToken: shard.fencingToken,
        keys: batch.map((c) => c.key),
      });
      const granted = new Set(res.newKeys);
      counts.duplicates += batch.length - granted.size;
      progress.duplicates += batch.length - granted.size;
      const fresh = batch.filter((c) => granted.has(c.key));
      progress.candidates += fresh.length;
      batch = [];
      yield* fresh;
    }.bind(this);
    for await (const candidate of candidates) {
      batch.push(candidate);
      if (batch.length >= CLAIM_BATCH) yield* flush();
    }
    if (batch.length > 0) yield* flush();
  }

  /** Streams every sample under credits; returns how many were sent. */
  private async stream(
    shard: WireShard,
    samples: AsyncIterable<SampleRecord>,
    progress: ShardProgressCounters,
    abort: AbortController,
  ): Promise<number> {
    const call = this.client.streamSamples();
    const wallet = new CreditWallet();
    const closed = new Promise<void>((resolve, reject) => {
      call.on('data', (grant: { credits: number }) => wallet.add(grant.credits));
      call.on('error', (err) => {
        wallet.close(err);
        abort.abort(err);
        reject(err);
      });
      call.on('end', () => resolve());
    });
    closed.catch(() => undefined);
    const header = { actorId: this.actorId, shardId: shard.shardId, fencingToken: shard.fencingToken };
    call.write({ ...header, samples: [] });
    // A stream that fails while the batcher waits for room never drains: the wait ends with it too.
    const batcher = new SampleBatcher(
      (batch) => call.write({ ...header, samples: batch }),
      () => Promise.race([new Promise<void>((resolve) => call.once('drain', resolve)), closed.catch(() => undefined)]),
    );
    let sent = 0;
    try {
      for await (const sample of samples) {
        await wallet.take();
        if (sample.status === 'success') {
          progress.downloaded++;
          progress.bytesIn += sample.jpeg?.length ?? 0;
        } else {
          progress.failed++;
        }
        await batcher.push(sampleToWire(sample));
        sent++;
      }
      await batcher.end();
    } catch (err) {
      batcher.discard();
      call.cancel();
      throw err;
    }
    call.end();
    await closed;
    return sent;
  }

  private startHeartbeats(): void {
    this.stopHeartbeats();
    const interval = this.settings?.heartbeatIntervalMs ?? 2000;
    this.heartbeatTimer = setInterval(() => void this.beat(), interval);
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async beat(): Promise<void> {
    const current = this.current;
    try {
      const res = await this.client.heartbeat({
        actorId: this.actorId,
        shards: current ? [shardProgress(current.shard, current.progress)] : [],
      });
      if (res.drain && !this.draining) {
        this.draining = true;
        this.opts.logger.info('coordinator asked to drain: finishing the current shard');
      }
      if (current && res.revokedShardIds.includes(current.shard.shardId)) {
        current.abort.abort(new Error(`lease of shard ${current.shard.shardId} revoked`));
      }
    } catch (err) {
      if (isStatus(err, grpc.status.FAILED_PRECONDITION) && refusalReason(err) === 'register-again') {
        // The coordinator no longer knows us (declared dead or restarted): drop the shard and re-register.
        current?.abort.abort(new ReRegister((err as Error).message));
      }
    }
  }

  private extractOptions(): { minCaptionLength: number; maxCaptionLength: number } {
    const s = this.settings!;
    return { minCaptionLength: s.minCaptionLength, maxCaptionLength: s.maxCaptionLength };
  }

  private resizeOptions(): ResizeOptions {
    const s = this.settings!;
    return {
      size: s.imageSize,
      mode: s.resizeMode as ResizeMode,
      minSize: s.minImageSize,
      jpegQuality: s.jpegQuality,
      maxPixels: s.maxPixels,
      extractExif: s.extractExif,
      timeoutSeconds: s.decodeTimeoutS,
    };
  }
}

function shardProgress(shard: WireShard, p: ShardProgressCounters): ShardProgress {
  return {
    shardId: shard.shardId,
    fencingToken: shard.fencingToken,
    candidates: p.candidates,
    duplicates: p.duplicates,
    downloaded: p.downloaded,
    failed: p.failed,
    bytesIn: p.bytesIn,
    sourceBytesRead: p.source.bytesRead,
    sourceBytesTotal: p.source.bytesTotal ?? 0,
  };
}
