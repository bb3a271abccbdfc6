import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ColumnSource } from 'hyparquet-writer';
import { float32ToFloat16 } from '../filter/float16.js';
import { abandonFile, drainedOrClosed, fsyncFile } from './files.js';
import { openEncodedParquet, type EncodedParquetFile } from './parquet-encoder.js';

/** The clip-retrieval layout: one file per output shard in each of these folders. */
export function embeddingFileNames(shardName: string): { image: string; text: string; metadata: string } {
  return {
    image: `img_emb/img_emb_${shardName}.npy`,
    text: `text_emb/text_emb_${shardName}.npy`,
    metadata: `metadata/metadata_${shardName}.parquet`,
  };
}

/**
 * The header of a version 1.0 .npy file holding a little-endian float16 `[rows, dim]` array in C
 * order, padded so that the data starts on a 64-byte boundary (numpy's format specification).
 */
export function float16NpyHeader(rows: number, dim: number): Buffer {
  const dict = `{'descr': '<f2', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const unpadded = 10 + dict.length + 1;
  const padded = Math.ceil(unpadded / 64) * 64;
  const text = dict + ' '.repeat(padded - unpadded) + '\n';
  const header = Buffer.alloc(10 + text.length);
  header.write('\x93NUMPY', 0, 'latin1');
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(text.length, 8);
  header.write(text, 10, 'latin1');
  return header;
}

interface MetadataRow {
  key: string;
  url: string;
  caption: string;
  similarity: number | null;
}

/**
 * One output shard's embeddings, streamed: each kept pair's rows go to disk as float16 when they
 * arrive (memory stays flat however large the shard), and `commit` prefixes the .npy headers and
 * writes the metadata parquet whose row i names row i of both arrays.
 */
export class EmbeddingWriter {
  private readonly metadata: MetadataRow[] = [];
  private metadataFile: EncodedParquetFile | null = null;
  private readonly image: WriteStream;
  private readonly text: WriteStream;
  /** The first write error (a full disk): the attempt fails with it instead of the process crashing. */
  error: Error | null = null;
  private staged: string[] = [];

  constructor(
    private readonly partialDir: string,
    private readonly tag: string,
    private readonly dim: number,
  ) {
    this.image = createWriteStream(this.rawPath('img'));
    this.text = createWriteStream(this.rawPath('text'));
    for (const stream of [this.image, this.text]) stream.on('error', (err: Error) => (this.error ??= err));
  }

  async add(row: MetadataRow, image: Float32Array, text: Float32Array): Promise<void> {
    if (image.length !== this.dim || text.length !== this.dim) {
      throw new Error(`embeddings of ${row.key} have ${image.length}/${text.length} values, expected ${this.dim}`);
    }
    if (this.error) throw this.error;
    this.metadata.push(row);
    const imageOk = this.image.write(Buffer.from(float32ToFloat16(image).buffer));
    const textOk = this.text.write(Buffer.from(float32ToFloat16(text).buffer));
    if (!imageOk) await drainedOrClosed(this.image);
    if (!textOk) await drainedOrClosed(this.text);
    if (this.error) throw this.error;
  }

  /** Writes the three files under the partial directory and returns [staged, final] path pairs. */
  async stage(outDir: string, shardName: string): Promise<[string, string][]> {
    const names = embeddingFileNames(shardName);
    const staged: [string, string][] = [];
    for (const [stream, kind, name] of [[this.image, 'img', names.image], [this.text, 'text', names.text]] as const) {
      if (this.error) throw this.error;
      stream.end();
      if (!stream.closed) await once(stream, 'close');
      if (this.error) throw this.error;
      const npy = join(this.partialDir, `${this.tag}.${kind}.npy`);
      this.staged.push(npy);
      await writeFile(npy, float16NpyHeader(this.metadata.length, this.dim));
      await pipeline(createReadStream(this.rawPath(kind)), createWriteStream(npy, { flags: 'a' }));
      await rm(this.rawPath(kind), { force: true });
      await fsyncFile(npy);
      staged.push([npy, join(outDir, name)]);
    }
    const parquet = join(this.partialDir, `${this.tag}.metadata.parquet`);
    this.staged.push(parquet);
    const file = (this.metadataFile = openEncodedParquet(parquet, metadataColumns([])));
    await file.append(metadataColumns(this.metadata));
    await file.close();
    await fsyncFile(parquet);
    staged.push([parquet, join(outDir, names.metadata)]);
    return staged;
  }

  async abort(): Promise<void> {
    // The thread may still be writing the metadata parquet: it is closed before its name is removed.
    await Promise.all([abandonFile(this.image), abandonFile(this.text), this.metadataFile?.abandon()]);
    const temp = [this.rawPath('img'), this.rawPath('text'), ...this.staged];
    this.staged = [];
    await Promise.all(temp.map((path) => rm(path, { force: true })));
  }

  private rawPath(kind: string): string {
    return join(this.partialDir, `${this.tag}.${kind}.f16`);
  }
}

/** clip-retrieval's metadata parquet: row i names row i of the embedding arrays. */
function metadataColumns(rows: readonly MetadataRow[]): ColumnSource[] {
  return [
    { name: 'key', data: rows.map((r) => r.key), type: 'STRING' },
    { name: 'url', data: rows.map((r) => r.url), type: 'STRING' },
    { name: 'caption', data: rows.map((r) => r.caption), type: 'STRING' },
    { name: 'similarity', data: rows.map((r) => r.similarity), type: 'DOUBLE' },
  ];
}
