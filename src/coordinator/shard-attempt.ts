import type { ExtraColumn } from '../filter/pair-filter.js';
import type { FilterStage } from '../filter/stage.js';
import { ShardWriter, type CommittedShard } from '../output/shard-writer.js';
import { sampleFromWire, type SampleRecord } from '../output/sample.js';
import { errorGroup } from '../output/stats.js';
import { MAX_ERROR_KINDS, OTHER_ERRORS } from '../store/runs.js';
import type { ShardSampleCounts } from '../store/shards.js';
import type { ExtractionCountsMessage, WireSample } from '../wire/contract.js';
import { imageRefusal, sampleRefusal, storedExif, storedUrl } from './sample-check.js';

/** What the coordinator counts of a running attempt's samples: the store's counters it knows, and what arrived. */
export type AttemptCounts = Pick<ShardSampleCounts, 'downloaded' | 'failed' | 'kept' | 'filteredOut' | 'bytesIn'> & { received: number };

/**
 * One lease of one shard on the coordinator side: samples arrive from the worker's stream, pass
 * the filter, and go to a ShardWriter writing temporary files. `finish` stages the output shard
 * once every sample the worker says it sent has been written, `publish` renames it into place;
 * `abort` throws the attempt away (the lease was lost) so nothing of it becomes visible.
 */
export class ShardAttempt {
  readonly counts: AttemptCounts = { received: 0, downloaded: 0, failed: 0, kept: 0, filteredOut: 0, bytesIn: 0 };
  readonly errors = new Map<string, number>();
  private processed = 0;
  private writeChain: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];
  private aborted = false;
  private failure: Error | null = null;
  readonly startedAtMs = Date.now();

  private constructor(
    readonly shardId: number,
    readonly fencingToken: number,
    readonly actorId: string,
    readonly source: string,
    private readonly writer: ShardWriter,
    private readonly filter: FilterStage,
  ) {}

  static async open(opts: {
    shardId: number;
    /** The output shard's number (the shard id, offset in a directory adopted with --incremental). */
    shardNumber?: number;
    fencingToken: number;
    actorId: string;
    source: string;
    outDir: string;
    filter: FilterStage;
    extraColumns?: ExtraColumn[];
    embeddingDim?: number;
  }): Promise<ShardAttempt> {
    const writer = await ShardWriter.open({
      outDir: opts.outDir,
      shardNumber: opts.shardNumber ?? opts.shardId,
      attemptTag: `t${opts.fencingToken}`,
      ...(opts.extraColumns ? { extraColumns: opts.extraColumns } : {}),
      ...(opts.embeddingDim ? { embeddingDim: opts.embeddingDim } : {}),
    });
    return new ShardAttempt(opts.shardId, opts.fencingToken, opts.actorId, opts.source, writer, opts.filter);
  }

  /** Filters and writes one sample; resolves when it is written (one stream credit comes back then). */
  async accept(wire: WireSample): Promise<void> {
    this.counts.received++;
    try {
      const refused = sampleRefusal(wire);
      if (refused) {
        this.counts.failed++;
        this.countError(refused);
        return;
      }
      const sample = toSampleRecord(wire);
      this.counts.bytesIn += wire.jpeg.length;
      if (sample.status === 'success') {
        this.counts.downloaded++;
        const verdict = await this.filter.submit({ key: sample.key, jpeg: wire.jpeg, caption: sample.caption });
        sample.similarity = verdict.similarity;
        const extras = {
          ...(verdict.extra ? { extra: verdict.extra } : {}),
          ...(verdict.keep && verdict.imageEmbedding ? { imageEmbedding: verdict.imageEmbedding } : {}),
          ...(verdict.keep && verdict.textEmbedding ? { textEmbedding: verdict.textEmbedding } : {}),
        };
        if (verdict.keep) {
          this.counts.kept++;
        } else {
          this.counts.filteredOut++;
          sample.status = 'filtered_out';
          sample.errorMessage = verdict.reason ?? 'rejected by the filter';
          sample.jpeg = null;
        }
        await this.write(sample, extras);
      } else {
        this.counts.failed++;
        this.countError(sample.errorMessage ?? sample.status);
        await this.write(sample, {});
      }
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    } finally {
      this.processed++;
      this.wake();
    }
  }

  /**
   * Counts a failure under its group (as in _stats.json: no byte counts, sizes or addresses), at
   * most MAX_ERROR_KINDS groups an attempt: the worker writes these messages, and a hostile one
   * could make each sample's unique.
   */
  private countError(message: string): void {
    const group = errorGroup(message);
    const key = this.errors.has(group) || this.errors.size < MAX_ERROR_KINDS ? group : OTHER_ERRORS;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  /** Waits for all `samplesSent` samples, then stages the output shard (nothing visible yet). */
  async finish(
    samplesSent: number,
    info: { extraction: ExtractionCountsMessage | null; sourceErrors: string[] },
    timeoutMs: number,
  ): Promise<CommittedShard> {
    const deadline = Date.now() + timeoutMs;
    while (this.processed < samplesSent && !this.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`only ${this.processed} of the ${samplesSent} samples sent for shard ${this.shardId} arrived`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.writeChain;
    if (this.aborted) throw new Error(`shard ${this.shardId} attempt was aborted`);
    if (this.failure) throw this.failure;
    if (this.processed > samplesSent) {
      throw new Error(`shard ${this.shardId}: received ${this.processed} samples but the worker sent ${samplesSent}`);
    }
    return this.writer.stage({
      startedAtMs: this.startedAtMs,
      source: this.source,
      sourceErrors: info.sourceErrors,
      ...(info.extraction ? { extraction: { ...info.extraction } } : {}),
    });
  }

  /** Renames the staged shard into place (its commit marker last) and fsyncs the directory. */
  publish(): Promise<void> {
    return this.writer.publish();
  }

  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    this.wake();
    await this.writeChain.catch(() => undefined);
    await this.writer.abort();
  }

  private write(sample: SampleRecord, extras: Parameters<ShardWriter['add']>[1]): Promise<void> {
    // Samples finish filtering in any order; the writer takes them one at a time.
    const next = this.writeChain.then(async () => {
      if (!this.aborted) await this.writer.add(sample, extras);
    });
    this.writeChain = next.catch(() => undefined);
    return next;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** The parquet's size columns are INT32: a larger value would abort the whole shard's commit. */
const MAX_DIMENSION = 2 ** 31 - 1;

/** Wire samples carry proto3 defaults for absent fields; the dataset uses nulls. */
export function toSampleRecord(wire: WireSample): SampleRecord {
  const refused = sampleRefusal(wire);
  if (refused) throw new Error(refused);
  const sizes = [wire.width, wire.height, wire.originalWidth, wire.originalHeight];
  if (sizes.some((v) => !Number.isSafeInteger(v) || v > MAX_DIMENSION)) {
    // One impossible sample fails that sample, not the shard.
    return {
      ...toSampleRecord({ ...wire, status: 'failed_to_resize', jpeg: Buffer.alloc(0), width: 0, height: 0, originalWidth: 0, originalHeight: 0 }),
      errorMessage: `the worker sent an impossible image size (${sizes.join('×')})`,
    };
  }
  const sample = { ...sampleFromWire(wire), url: storedUrl(wire.url), pageUrl: storedUrl(wire.pageUrl), exif: storedExif(wire.exif) };
  const badImage = imageRefusal(wire);
  if (badImage) return { ...sample, status: 'failed_to_resize', errorMessage: badImage, jpeg: null };
  // Only a success brings its image into the dataset.
  return sample.status === 'success' ? sample : { ...sample, jpeg: null };
}
