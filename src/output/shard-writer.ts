import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileWriter, ParquetWriter, schemaFromColumnData, type ColumnSource } from 'hyparquet-writer';
import type { ExtraColumn } from '../filter/filter.js';
import tar from 'tar-stream';
import { abandonStream, drainedOrClosed, fsyncFile } from './files.js';
import type { SampleRecord } from './sample.js';
import { EmbeddingWriter, publish } from './embeddings.js';

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

const PARTIAL_DIR = '.partial';
const TAR_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
const PARQUET_ROW_GROUP = 8192;
/** Rows are also flushed once their text reaches this size: a worker's long strings cannot fill memory. */
const PARQUET_BUFFER_BYTES = 16 * 1024 * 1024;

interface Row {
  key: string;
  url: string;
  caption: string;
  page_url: string;
  license: string | null;
  status: string;
  error_message: string | null;
  width: number | null;
  height: number | null;
  original_width: number | null;
  original_height: number | null;
  sha256: string | null;
  similarity: number | null;
  download_attempts: number | null;
  extra: Record<string, string | number | null>;
}

/**
 * One output shard in img2dataset's webdataset layout: NNNNN.tar ({key}.jpg/.txt/.json for each
 * kept pair, streamed to disk), NNNNN.parquet (a row for every sample) and NNNNN_stats.json.
 * Everything is written under .partial/ and renamed into place at commit, tar last, so no partial
 * tar is ever visible under its final name.
 */
export class ShardWriter {
  private pending: Row[] = [];
  private pendingBytes = 0;
  private readonly keys = new Set<string>();
  private readonly downloadMs: number[] = [];
  private readonly resizeMs: number[] = [];
  private readonly counts: Record<string, number> = { success: 0, failed_to_download: 0, failed_to_resize: 0, filtered_out: 0 };
  private readonly errors: Record<string, Record<string, number>> = {};
  private total = 0;
  private closed = false;

  private constructor(
    private readonly opts: ShardWriterOptions,
    readonly shardName: string,
    private readonly tmpTar: string,
    private readonly pack: tar.Pack,
    private readonly file: WriteStream,
    private readonly tmpParquet: string,
    private readonly parquet: ParquetWriter,
    /** img_emb/text_emb/metadata of the kept pairs, when the filter yields embeddings. */
    private readonly embeddings: EmbeddingWriter | null,
  ) {}

  static async open(opts: ShardWriterOptions): Promise<ShardWriter> {
    const shardName = String(opts.shardNumber).padStart(5, '0');
    const partial = join(opts.outDir, PARTIAL_DIR);
    await mkdir(partial, { recursive: true });
    const tmpTar = join(partial, `${shardName}.${opts.attemptTag}.tar`);
    const pack = tar.pack();
    // Images are ~20 KB each; the default 16 KB buffer would make every sample wait for a disk write.
    const file = createWriteStream(tmpTar, { highWaterMark: TAR_WRITE_BUFFER_BYTES });
    pack.pipe(file);
    const tmpParquet = join(partial, `${shardName}.${opts.attemptTag}.parquet`);
    const schema = schemaFromColumnData({ columnData: parquetColumns([], opts.extraColumns ?? []) });
    const parquet = new ParquetWriter({ writer: fileWriter(tmpParquet), schema });
    const embeddings = opts.embeddingDim ? new EmbeddingWriter(partial, `${shardName}.${opts.attemptTag}`, opts.embeddingDim) : null;
    return new ShardWriter(opts, shardName, tmpTar, pack, file, tmpParquet, parquet, embeddings);
  }

  /** Adds one sample; a key already added is ignored (returns false). */
  async add(sample: SampleRecord, extras: SampleExtras = {}): Promise<boolean> {
    if (this.closed) throw new Error(`shard ${this.shardName} is already committed or aborted`);
    if (this.keys.has(sample.key)) return false;
    if (sample.key.includes('.') || sample.key.includes('/')) throw new Error(`invalid sample key "${sample.key}"`);
    this.keys.add(sample.key);
    const row: Row = {
      key: sample.key,
      url: sample.url,
      caption: sample.caption,
      page_url: sample.pageUrl,
      license: sample.license,
      status: sample.status,
      error_message: sample.errorMessage,
      width: sample.width,
      height: sample.height,
      original_width: sample.originalWidth,
      original_height: sample.originalHeight,
      sha256: sample.sha256,
      similarity: sample.similarity,
      download_attempts: sample.downloadAttempts ?? null,
      extra: extras.extra ?? {},
    };
    this.count(row);
    if (sample.downloadMs !== null) this.downloadMs.push(sample.downloadMs);
    if (sample.resizeMs !== null) this.resizeMs.push(sample.resizeMs);
    this.pending.push(row);
    this.pendingBytes += row.key.length + row.url.length + row.caption.length + row.page_url.length + (row.license?.length ?? 0) + (row.error_message?.length ?? 0);
    // Rows go to the parquet a row group at a time: memory stays flat however large the shard.
    if (this.pending.length >= PARQUET_ROW_GROUP || this.pendingBytes >= PARQUET_BUFFER_BYTES) await this.flushRows();
    if (sample.status === 'success' && sample.jpeg) {
      const { extra, ...meta } = row;
      this.pack.entry({ name: `${sample.key}.jpg` }, sample.jpeg);
      this.pack.entry({ name: `${sample.key}.txt` }, Buffer.from(sample.caption, 'utf8'));
      this.pack.entry({ name: `${sample.key}.json` }, Buffer.from(JSON.stringify({ ...meta, ...extra })));
      if (this.file.writableNeedDrain) await drainedOrClosed(this.file);
      if (this.closed) throw new Error(`shard ${this.shardName} was aborted`);
      if (this.embeddings && extras.imageEmbedding && extras.textEmbedding) {
        const { key, url, caption, similarity } = sample;
        await this.embeddings.add({ key, url, caption, similarity }, extras.imageEmbedding, extras.textEmbedding);
      }
    }
    return true;
  }

  async commit(info: ShardCommitInfo): Promise<CommittedShard> {
    if (this.closed) throw new Error(`shard ${this.shardName} is already committed or aborted`);
    this.closed = true;
    this.pack.finalize();
    await once(this.file, 'close');
    await fsyncFile(this.tmpTar);
    const { outDir, attemptTag } = this.opts;
    const partial = join(outDir, PARTIAL_DIR);
    await this.flushRows();
    await this.parquet.finish();
    await fsyncFile(this.tmpParquet);
    const endedAt = Date.now();
    const counts = this.counts;
    const stats = {
      count: this.total,
      successes: counts['success'],
      failed_to_download: counts['failed_to_download'],
      failed_to_resize: counts['failed_to_resize'],
      filtered_out: counts['filtered_out'],
      status_dict: counts,
      error_counts: this.errors,
      source: info.source ?? null,
      source_errors: info.sourceErrors ?? [],
      extraction: info.extraction ?? {},
      start_time: info.startedAtMs / 1000,
      end_time: endedAt / 1000,
      duration: (endedAt - info.startedAtMs) / 1000,
      download_ms: summary(this.downloadMs),
      resize_ms: summary(this.resizeMs),
    };
    const tmpStats = join(partial, `${this.shardName}.${attemptTag}_stats.json`);
    await writeFile(tmpStats, JSON.stringify(stats, null, 2));
    // Embedding rows follow the order of the kept rows of the parquet: both follow `add`.
    const embeddings = (await this.embeddings?.stage(outDir, this.shardName)) ?? [];
    await publish(embeddings);
    const embeddingPaths = embeddings.map(([, path]) => path);
    const tarPath = join(outDir, `${this.shardName}.tar`);
    const parquetPath = join(outDir, `${this.shardName}.parquet`);
    const statsPath = join(outDir, `${this.shardName}_stats.json`);
    await rename(this.tmpParquet, parquetPath);
    await rename(tmpStats, statsPath);
    await rename(this.tmpTar, tarPath);
    const tarBytes = (await stat(tarPath)).size;
    return { shardName: this.shardName, tarPath, parquetPath, statsPath, embeddingPaths, kept: counts['success'] ?? 0, total: this.total, tarBytes, countsByStatus: counts };
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    abandonStream(this.pack);
    abandonStream(this.file);
    await this.embeddings?.abort();
    await rm(this.tmpTar, { force: true });
    await rm(this.tmpParquet, { force: true });
  }

  private count(row: Row): void {
    this.total++;
    this.counts[row.status] = (this.counts[row.status] ?? 0) + 1;
    if (row.status !== 'success' && row.error_message) {
      const byMessage = (this.errors[row.status] ??= {});
      byMessage[row.error_message] = (byMessage[row.error_message] ?? 0) + 1;
    }
  }

  private async flushRows(): Promise<void> {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.parquet.write({ columnData: parquetColumns(rows, this.opts.extraColumns ?? []), rowGroupSize: rows.length });
  }
}

/** The parquet columns of img2dataset's layout, then the filter's extra columns. */
function parquetColumns(rows: Row[], extraColumns: readonly ExtraColumn[]): ColumnSource[] {
  const col = <K extends keyof Row>(name: K): Row[K][] => rows.map((r) => r[name]);
  return [
    { name: 'key', data: col('key'), type: 'STRING' },
    { name: 'url', data: col('url'), type: 'STRING' },
    { name: 'caption', data: col('caption'), type: 'STRING' },
    { name: 'page_url', data: col('page_url'), type: 'STRING' },
    { name: 'license', data: col('license'), type: 'STRING' },
    { name: 'status', data: col('status'), type: 'STRING' },
    { name: 'error_message', data: col('error_message'), type: 'STRING' },
    { name: 'width', data: col('width'), type: 'INT32' },
    { name: 'height', data: col('height'), type: 'INT32' },
    { name: 'original_width', data: col('original_width'), type: 'INT32' },
    { name: 'original_height', data: col('original_height'), type: 'INT32' },
    { name: 'sha256', data: col('sha256'), type: 'STRING' },
    { name: 'similarity', data: col('similarity'), type: 'DOUBLE' },
    { name: 'download_attempts', data: col('download_attempts'), type: 'INT32' },
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

function summary(values: number[]): { mean: number | null; median: number | null } {
  if (values.length === 0) return { mean: null, median: null };
  const sorted = [...values].sort((a, b) => a - b);
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, median: sorted[Math.floor(sorted.length / 2)]! };
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
