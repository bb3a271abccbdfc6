import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { ColumnSource } from 'hyparquet-writer';
import type { ExtraColumn } from '../filter/pair-filter.js';
import { abandonFile, abandonStream, drainedOrClosed, fsyncDir, fsyncFile, writeFileSynced } from './files.js';
import { openEncodedParquet, type EncodedParquetFile } from './parquet-encoder.js';
import { METADATA_COLUMNS, metadataRow, type MetadataRow, type SampleRecord } from './sample.js';
import { EmbeddingWriter, embeddingFileNames } from './embeddings.js';
import { ShardStats } from './stats.js';
import { TAR_END, isTarMemberName, tarMember } from './tar.js';

export interface ShardWriterOptions {
  outDir: string;
  /** Output shard NNNNN (zero-padded to 5 digits). */
  shardNumber: number;
  /** Unique per lease attempt: temp names of two attempts never collide. */
  attemptTag: string;
  /** The filter's extra per-pair columns (language, scorer heads), after img2dataset's. */
  extraColumns?: readonly ExtraColumn[];
  /** Set when the filter yields embeddings: kept pairs' embeddings are written in clip-retrieval's layout. */
  embeddingDim?: number;
}

export interface SampleExtras {
  extra?: Record<string, string | number | null>;
  imageEmbedding?: Float32Array;
  textEmbedding?: Float32Array;
}

export interface ShardCommitInfo {
  extraction?: Record<string, number>;
  sourceErrors?: string[];
  source?: string;
  startedAtMs: number;
}

export interface CommittedShard {
  shardName: string;
  tarPath: string;
  parquetPath: string;
  statsPath: string;
  /** img_emb/text_emb .npy and metadata parquet, when the filter yields embeddings. */
  embeddingPaths: string[];
  kept: number;
  total: number;
  tarBytes: number;
  countsByStatus: Record<string, number>;
}

export const PARTIAL_DIR = '.partial';
const TAR_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Rows go to the parquet encoder thread in batches of this many (it cuts them into row groups of 8,192)... */
const PARQUET_BATCH_ROWS = 512;
/** ...or once their text reaches this size: a worker's long strings cannot fill memory. */
const PARQUET_BATCH_BYTES = 1024 * 1024;

/**
 * Fault injection for the chaos suite only: CAH_FAULT_CRASH_PUBLISH=N makes the process kill
 * itself (SIGKILL) in the middle of its N-th publish, after the first rename.
 */
const CRASH_AT_PUBLISH = Number(process.env['CAH_FAULT_CRASH_PUBLISH'] ?? 0);
let publishes = 0;

/** A metadata row and the filter's extra columns of the same sample. */
export interface Row {
  meta: MetadataRow;
  extra: Record<string, string | number | null>;
}

/**
 * One output shard in img2dataset's webdataset layout: NNNNN.tar ({key}.jpg/.txt/.json for each
 * kept pair, streamed to disk), NNNNN.parquet (a row for every sample) and NNNNN_stats.json.
 * Everything is written and fsynced under .partial/, then renamed into place at commit, the
 * _stats.json last: a shard is complete exactly when its NNNNN_stats.json exists (readers skip
 * shards without it; the coordinator's recovery removes them), and the directory is fsynced before
 * the shard is marked done. A write error (a full disk) fails the attempt and leaves no temp file.
 */
export class ShardWriter {
  private pending: Row[] = [];
  private pendingBytes = 0;
  private readonly keys = new Set<string>();
  private readonly stats = new ShardStats();
  private closed = false;
  private failure: Error | null = null;
  private staged: [string, string][] = [];

  private constructor(
    private readonly opts: ShardWriterOptions,
    readonly shardName: string,
    private readonly tmpTar: string,
    private readonly file: WriteStream,
    private readonly parquet: EncodedParquetFile,
    /** img_emb/text_emb/metadata of the kept pairs, when the filter yields embeddings. */
    private readonly embeddings: EmbeddingWriter | null,
  ) {}

  static async open(opts: ShardWriterOptions): Promise<ShardWriter> {
    const shardName = String(opts.shardNumber).padStart(5, '0');
    const partial = join(opts.outDir, PARTIAL_DIR);
    await mkdir(partial, { recursive: true });
    const tmpTar = join(partial, `${shardName}.${opts.attemptTag}.tar`);
    // Images are ~20 KB each; the default 16 KB buffer would make every sample wait for a disk write.
    const file = createWriteStream(tmpTar, { highWaterMark: TAR_WRITE_BUFFER_BYTES });
    const tmpParquet = join(partial, `${shardName}.${opts.attemptTag}.parquet`);
    const parquet = openEncodedParquet(tmpParquet, parquetColumns([], opts.extraColumns ?? []));
    const embeddings = opts.embeddingDim ? new EmbeddingWriter(partial, `${shardName}.${opts.attemptTag}`, opts.embeddingDim) : null;
    const writer = new ShardWriter(opts, shardName, tmpTar, file, parquet, embeddings);
    // Without a listener a disk error (ENOSPC, EACCES) would be an unhandled 'error' event: a crash.
    file.on('error', (err: Error) => (writer.failure ??= err));
    return writer;
  }

  /** The first write error of this attempt, if any. */
  get error(): Error | null {
    return this.failure ?? this.parquet.error ?? this.embeddings?.error ?? null;
  }

  /** Adds one sample; a key already added is ignored (returns false). */
  async add(sample: SampleRecord, extras: SampleExtras = {}): Promise<boolean> {
    if (this.closed) throw new Error(`shard ${this.shardName} is already committed or aborted`);
    if (this.error) throw this.error;
    if (this.keys.has(sample.key)) return false;
    // Checked before anything is recorded: a key its tar members cannot carry fails this sample only.
    if (sample.key.includes('.') || sample.key.includes('/') || !isTarMemberName(`${sample.key}.json`)) throw new Error(`invalid sample key "${sample.key}"`);
    this.keys.add(sample.key);
    const row: Row = { meta: metadataRow(sample), extra: extras.extra ?? {} };
    this.stats.add(sample);
    this.pending.push(row);
    for (const value of Object.values(row.meta)) if (typeof value === 'string') this.pendingBytes += value.length;
    // Rows go to the parquet a batch at a time: memory stays flat however large the shard.
    if (this.pending.length >= PARQUET_BATCH_ROWS || this.pendingBytes >= PARQUET_BATCH_BYTES) await this.flushRows();
    if (sample.status === 'success' && sample.jpeg) {
      const mtime = Date.now() / 1000;
      const parts = [
        ...tarMember(`${sample.key}.jpg`, sample.jpeg, mtime),
        ...tarMember(`${sample.key}.txt`, Buffer.from(sample.caption, 'utf8'), mtime),
        ...tarMember(`${sample.key}.json`, Buffer.from(JSON.stringify({ ...row.meta, ...row.extra })), mtime),
      ];
      // The sample's three members in one writev (the stream coalesces what it is given while corked).
      this.file.cork();
      for (const part of parts) this.file.write(part);
      this.file.uncork();
      if (this.file.writableNeedDrain) await drainedOrClosed(this.file);
      if (this.error) throw this.error;
      if (this.closed) throw new Error(`shard ${this.shardName} was aborted`);
      if (this.embeddings && extras.imageEmbedding && extras.textEmbedding) {
        const { key, url, caption, similarity } = sample;
        await this.embeddings.add({ key, url, caption, similarity }, extras.imageEmbedding, extras.textEmbedding);
      }
    }
    return true;
  }

  /** Stages and publishes in one go (see `stage` and `publish`). */
  async commit(info: ShardCommitInfo): Promise<CommittedShard> {
    const staged = await this.stage(info);
    await this.publish();
    return staged;
  }

  /**
   * Finishes every file of the shard under .partial/ and fsyncs it; nothing is visible yet. On
   * any error the temp files are removed and the error is thrown.
   */
  async stage(info: ShardCommitInfo): Promise<CommittedShard> {
    if (this.closed) throw new Error(`shard ${this.shardName} is already committed or aborted`);
    this.closed = true;
    try {
      if (this.error) throw this.error;
      this.file.end(TAR_END);
      if (!this.file.closed) await once(this.file, 'close');
      if (this.error) throw this.error;
      await fsyncFile(this.tmpTar);
      const { outDir, attemptTag } = this.opts;
      const partial = join(outDir, PARTIAL_DIR);
      await this.flushRows();
      await this.parquet.close();
      await fsyncFile(this.parquet.path);
      const counts = this.stats.counts;
      const stats = this.stats.json({
        source: info.source ?? null,
        sourceErrors: info.sourceErrors ?? [],
        extraction: info.extraction ?? {},
        startedAtMs: info.startedAtMs,
        endedAtMs: Date.now(),
      });
      const tmpStats = join(partial, `${this.shardName}.${attemptTag}_stats.json`);
      const tarPath = join(outDir, `${this.shardName}.tar`);
      const parquetPath = join(outDir, `${this.shardName}.parquet`);
      const statsPath = join(outDir, `${this.shardName}_stats.json`);
      // Embedding rows follow the order of the kept rows of the parquet: both follow `add`.
      this.staged = (await this.embeddings?.stage(outDir, this.shardName)) ?? [];
      // The stats file is the commit marker: renamed last.
      this.staged.push([this.parquet.path, parquetPath], [this.tmpTar, tarPath], [tmpStats, statsPath]);
      await writeFileSynced(tmpStats, JSON.stringify(stats, null, 2));
      const tarBytes = (await stat(this.tmpTar)).size;
      const embeddingPaths = this.staged.slice(0, -3).map(([, path]) => path);
      return { shardName: this.shardName, tarPath, parquetPath, statsPath, embeddingPaths, kept: counts['success'] ?? 0, total: this.stats.total, tarBytes, countsByStatus: counts };
    } catch (err) {
      await this.removeTemp();
      throw err;
    }
  }

  /** Renames the staged files into place, the commit marker last, and fsyncs the directories. */
  async publish(): Promise<void> {
    const staged = this.staged;
    if (staged.length === 0) throw new Error(`shard ${this.shardName} has nothing staged`);
    const dirs = new Set<string>();
    const crash = CRASH_AT_PUBLISH > 0 && ++publishes === CRASH_AT_PUBLISH;
    for (const [from, to] of staged) {
      await mkdir(dirname(to), { recursive: true });
      await rename(from, to);
      dirs.add(dirname(to));
      if (crash) process.kill(process.pid, 'SIGKILL');
    }
    this.staged = [];
    for (const dir of dirs) await fsyncDir(dir);
  }

  /** Throws the attempt away: streams stopped, every temp file removed (also after a failed commit). */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      abandonStream(this.file);
    }
    await this.removeTemp();
  }

  private async removeTemp(): Promise<void> {
    await abandonFile(this.file);
    await this.parquet.abandon();
    await this.embeddings?.abort();
    const temp = [this.tmpTar, this.parquet.path, ...this.staged.map(([from]) => from)];
    this.staged = [];
    await Promise.all(temp.map((path) => rm(path, { force: true })));
  }

  private async flushRows(): Promise<void> {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.parquet.append(parquetColumns(rows, this.opts.extraColumns ?? []));
  }
}

/** The parquet columns of img2dataset's layout, then the filter's extra columns. */
export function parquetColumns(rows: Row[], extraColumns: readonly ExtraColumn[]): ColumnSource[] {
  return [
    ...METADATA_COLUMNS.map(({ name, type }) => ({ name, type, data: rows.map((r) => r.meta[name]) })),
    ...extraColumns.map(({ name, type }) => ({
      name,
      type,
      data: rows.map((r) => {
        const value = r.extra[name] ?? null;
        if (value === null) return null;
        return type === 'DOUBLE' ? (typeof value === 'number' ? value : null) : String(value);
      }),
    })),
  ];
}

/** The output files of one shard, as published (the commit marker last). */
export function shardFileNames(shardName: string): string[] {
  const emb = embeddingFileNames(shardName);
  return [emb.image, emb.text, emb.metadata, `${shardName}.parquet`, `${shardName}.tar`, `${shardName}_stats.json`];
}

const SHARD_FILE = /^(\d{5,})(?:\.tar|\.parquet|_stats\.json)$/;
const EMBEDDING_FILE = /^(?:img_emb_|text_emb_|metadata_)(\d{5,})\.(?:npy|parquet)$/;

/** Shard names that have files in the output directory (top level and the embedding folders). */
export async function shardNamesOnDisk(outDir: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const [dir, pattern] of [['', SHARD_FILE], ['img_emb', EMBEDDING_FILE], ['text_emb', EMBEDDING_FILE], ['metadata', EMBEDDING_FILE]] as const) {
    const entries = await readdir(join(outDir, dir)).catch(() => [] as string[]);
    for (const entry of entries) {
      const match = pattern.exec(entry);
      if (match) names.add(match[1]!);
    }
  }
  return names;
}

/**
 * At coordinator start: removes every file of the shards `isCommitted` does not know as done
 * (renamed into place by a coordinator that died before marking the shard done, or left by a
 * failed publish). Their shards are queued again, so nothing is lost. Returns the names removed.
 */
export async function removeUncommittedShards(outDir: string, isCommitted: (shardName: string) => boolean): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await shardNamesOnDisk(outDir)) {
    if (isCommitted(name)) continue;
    await Promise.all(shardFileNames(name).map((file) => rm(join(outDir, file), { force: true })));
    removed.push(name);
  }
  if (removed.length > 0) await fsyncDir(outDir);
  return removed;
}

/** At coordinator start: temp files of attempts that died with the previous process. */
export async function removeStalePartials(outDir: string): Promise<number> {
  const partial = join(outDir, PARTIAL_DIR);
  let names: string[];
  try {
    names = await readdir(partial);
  } catch {
    return 0;
  }
  await Promise.all(names.map((n) => rm(join(partial, n), { force: true })));
  return names.length;
}
